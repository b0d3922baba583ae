//! Typed questions: the helpers a step's *want* phase asks through.
//!
//! Each takes the key of the answer in the answers file (its identity in messages and in
//! recorded answers), the question, the detected default, and the slot in [`Answers`] that
//! holds it. A known answer is returned as it is (it was parsed when it was given); a missing
//! one is asked for, parsed by its own type exactly as the file's value would be, stored in
//! the slot (so no later step asks again) and returned.

use super::{Ask, AskError, Question, Reply};
use crate::settings::{Answers, Setting};

impl dyn Ask + '_ {
    /// Fail when the provided answer at `key` (or under it) was refused.
    pub fn check_refused(&self, key: &str) -> Result<(), AskError> {
        match self.refused(key) {
            Some(reason) => Err(AskError::Invalid {
                key: key.to_string(),
                reason,
            }),
            None => Ok(()),
        }
    }

    /// A typed value at `key`.
    pub fn want<T: Setting>(
        &mut self,
        key: &str,
        question: &str,
        default: Option<T>,
        mut slot: impl FnMut(&mut Answers) -> &mut Option<T>,
    ) -> Result<T, AskError> {
        self.check_refused(key)?;
        if let Some(v) = slot(self.answers_mut()) {
            return Ok(v.clone());
        }
        let v = self.ask_value(key, question, default, &|_: &T| Ok(()))?;
        *slot(self.answers_mut()) = Some(v.clone());
        Ok(v)
    }

    /// Ask for a typed value (nothing is looked up or stored: the caller does that), checked
    /// by its own parser and then by `also` (a check against other answers), so a person is
    /// asked again with the reason rather than told later.
    pub fn ask_value<T: Setting>(
        &mut self,
        key: &str,
        question: &str,
        default: Option<T>,
        also: &dyn Fn(&T) -> Result<(), String>,
    ) -> Result<T, AskError> {
        let parse = |s: &str| s.parse::<T>().and_then(|v| also(&v).map(|()| v));
        self.ask_parsed(key, question, default.as_ref().map(T::to_string), &parse)
    }

    /// Ask for text and parse it with `parse`, which also checks it as it is typed (so a
    /// person is asked again with the reason).
    fn ask_parsed<V>(
        &mut self,
        key: &str,
        question: &str,
        default: Option<String>,
        parse: &dyn Fn(&str) -> Result<V, String>,
    ) -> Result<V, AskError> {
        let check = |s: &str| parse(s).map(drop);
        let reply = self.prompt(
            key,
            question,
            Question::Text {
                default,
                check: &check,
            },
        )?;
        match reply {
            Reply::Text(s) => parse(&s).map_err(|reason| AskError::Invalid {
                key: key.to_string(),
                reason,
            }),
            other => Err(wrong_reply(key, &other)),
        }
    }

    /// A whole number in `lo..=hi` at `key`.
    pub fn want_number<N>(
        &mut self,
        key: &str,
        question: &str,
        default: Option<N>,
        range: (i64, i64),
        mut slot: impl FnMut(&mut Answers) -> &mut Option<N>,
    ) -> Result<N, AskError>
    where
        N: Copy + TryFrom<i64> + Into<i64>,
    {
        self.check_refused(key)?;
        if let Some(v) = slot(self.answers_mut()) {
            return Ok(*v);
        }
        let n = self.ask_number(key, question, default.map(Into::into), range)?;
        let v = N::try_from(n).map_err(|_| AskError::Invalid {
            key: key.to_string(),
            reason: format!("{n} does not fit"),
        })?;
        *slot(self.answers_mut()) = Some(v);
        Ok(v)
    }

    /// Ask for a whole number in `lo..=hi` (nothing is looked up or stored).
    pub fn ask_number(
        &mut self,
        key: &str,
        question: &str,
        default: Option<i64>,
        (lo, hi): (i64, i64),
    ) -> Result<i64, AskError> {
        let parse = |s: &str| -> Result<i64, String> {
            s.trim()
                .parse::<i64>()
                .ok()
                .filter(|n| (lo..=hi).contains(n))
                .ok_or_else(|| format!("{s} is not a whole number from {lo} to {hi}"))
        };
        self.ask_parsed(key, question, default.map(|d| d.to_string()), &parse)
    }

    /// Yes or no at `key`.
    pub fn want_yes(
        &mut self,
        key: &str,
        question: &str,
        default: bool,
        mut slot: impl FnMut(&mut Answers) -> &mut Option<bool>,
    ) -> Result<bool, AskError> {
        self.check_refused(key)?;
        if let Some(v) = slot(self.answers_mut()) {
            return Ok(*v);
        }
        let v = match self.prompt(key, question, Question::Confirm { default })? {
            Reply::Yes(b) => b,
            other => return Err(wrong_reply(key, &other)),
        };
        *slot(self.answers_mut()) = Some(v);
        Ok(v)
    }

    /// One of `choices` at `key`.
    pub fn want_choice<T: Setting + Copy>(
        &mut self,
        key: &str,
        question: &str,
        choices: &[T],
        default: T,
        mut slot: impl FnMut(&mut Answers) -> &mut Option<T>,
    ) -> Result<T, AskError> {
        self.check_refused(key)?;
        if let Some(v) = slot(self.answers_mut()) {
            return Ok(*v);
        }
        let words: Vec<String> = choices.iter().map(T::to_string).collect();
        let refs: Vec<&str> = words.iter().map(String::as_str).collect();
        let at = choices
            .iter()
            .position(|c| c.to_string() == default.to_string())
            .unwrap_or(0);
        let v = match self.prompt(
            key,
            question,
            Question::Select {
                choices: &refs,
                default: at,
            },
        )? {
            Reply::Chose(i) => *choices.get(i).ok_or_else(|| AskError::Invalid {
                key: key.to_string(),
                reason: format!("choice {i} is not offered"),
            })?,
            Reply::Text(s) => s.parse::<T>().map_err(|reason| AskError::Invalid {
                key: key.to_string(),
                reason,
            })?,
            other => return Err(wrong_reply(key, &other)),
        };
        *slot(self.answers_mut()) = Some(v);
        Ok(v)
    }
}

fn wrong_reply(key: &str, r: &Reply) -> AskError {
    AskError::Invalid {
        key: key.to_string(),
        reason: format!("internal: unexpected reply {r:?}"),
    }
}
