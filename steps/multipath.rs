//! The multipath step: the target's LUNs mapped by dm-multipath, `multipathd` running, the
//! volume's map found and every one of its paths checked.
//!
//! **Configuration: the least change that maps the target's LUNs.** NetApp E-Series LUNs
//! (`NETAPP`/`LSI`/`ENGENIO`, `INF-01-00`) are in multipath-tools' built-in hardware table
//! (rdac, `no_path_retry 30`), so no `devices` section is ever written. What decides whether a
//! new LUN gets a map is `find_multipaths`, read from the configuration in effect
//! (`multipath -t`: built-in default, distro patches, `/etc/multipath.conf` and its
//! `config_dir` drop-ins), never guessed from the distro name:
//! - `no`/`off`, `greedy`: every path is mapped; nothing to change.
//! - `yes`/`on`, `smart`: a WWID seen on two or more paths is mapped; with one session a LUN
//!   has one path and is not, so its WWID is added as below.
//! - `strict` (upstream's default, and what Debian 12 ships: the lab's LIO LUNs stayed
//!   unmapped): only WWIDs listed in `/etc/multipath/wwids` are mapped.
//!
//! A LUN that would stay unmapped gets its WWID added with `multipath -a /dev/sdX` (one path
//! device per LUN; multipath computes the WWID itself). Only this target's LUNs are added, and
//! with `volume.wwid` given only that one. This is less intrusive than a
//! `defaults { find_multipaths no }` drop-in, which the lab used: that would make multipath
//! claim every disk of the host, local ones included. `/etc/multipath.conf` is never edited.
//!
//! Per distro:
//! - RHEL: multipathd does not start without `/etc/multipath.conf` (its unit's
//!   `ConditionPathExists`), and multipath blacklists everything then. When the file is
//!   absent it is created from `templates/multipath-rhel.conf`: what `mpathconf --enable`
//!   writes (`user_friendly_names yes`, `find_multipaths yes`). An existing file is kept.
//! - Debian, Ubuntu, SLES: no file is needed (the package's built-in defaults or its own
//!   file apply); an existing one is kept, and WWIDs are added as above when needed.
//!
//! Then `systemctl enable --now multipathd` (only when `is-enabled`/`is-active` say it is
//! not), `systemctl reload multipathd` when a running daemon must read a new
//! `multipath.conf`, and `multipath -r` so the maps are made now. When
//! `multipath.rebuild_initramfs` is true and the configuration changed in this run, the
//! initramfs is rebuilt (`dracut --force --add multipath` on RHEL and SLES,
//! `update-initramfs -u` on Debian and Ubuntu). A change applied by a run that stopped before
//! the rebuild leaves `initramfs_pending` in the facts, so the next run still rebuilds; a
//! rerun with nothing changed does not.
//!
//! **The volume.** After any change the step waits (polling `multipath -ll`, at most
//! [`MAP_BOUND`]) until the LUNs' maps have a healthy path through every session. The
//! volume is the map of `volume.wwid`, or with `"auto"` the one map of this target's LUNs
//! (maps with a path among the sessions' disks) that carries no data (no `blkid -p`
//! signature, nothing built on it or mounted): several candidates, none, or only maps with
//! data stop the step with the list and ask for `volume.wwid`. A map chosen by an earlier run
//! (the facts' WWID) is kept, whatever it now carries. A given WWID that carries data is
//! recorded, not refused: the filesystem step decides about data.
//!
//! Verify requires one path per session (a session's disk among the map's paths), every path
//! `active` with checker `ready` (or `ghost`, an rdac/ALUA standby path), and records the
//! WWID, vendor/product, size and paths in the facts and the worksheet.
//!
//! **The shape.** *Want* (`Multipath::wanted` and the initramfs question in `plan`) is
//! the only place that asks; *observe* ([`observe`]) holds the read-only probes; *decide*
//! ([`decide`]) the pure rules, table-tested: which WWIDs to list ([`to_list`]), which map
//! is the volume ([`choose`]), whether a map is healthy ([`path_differences`], one check for
//! the wait and for verify), what makes multipathd run ([`ServiceState::actions`]). The
//! facts and the worksheet are written by `verify` ([`MultipathFact`] in `facts.multipath`);
//! the one exception is `initramfs_pending`, a journal set when a real run plans a
//! configuration change and cleared by the rebuild, so a run stopped in between rebuilds
//! next time.
//!
//! **A dry run before the sessions exist** (a bare host: no sessions, no multipath-tools)
//! plans from the answers: `multipath -a` with the answered WWID (or a placeholder for the
//! one learned after login), multipathd enabled and started, `multipath -r`, the initramfs
//! as answered, and the wait. A real run without sessions still stops and says why.

pub mod decide;
pub mod observe;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::settings::Wwid;
pub use crate::steps::facts::MultipathFact;
use crate::steps::facts::{Distro, MapPathFact, SessionFact, VolumeFact};
use crate::steps::parse::multipath::Map;
use crate::steps::poll::{poll_until, Wait};
use crate::steps::{Action, Cmd, Ctx, Plan, Step, StepError, StepName};

pub use decide::*;
use observe::{
    data_on, list_maps, service_state, service_state_on, udev_has_wwid, udev_properties,
    wait_for_udev, UDEV_WAIT,
};

/// The configuration file RHEL needs, as `mpathconf --enable` writes it.
const RHEL_CONF: &str = include_str!("../templates/multipath-rhel.conf");
/// multipath-tools' configuration file.
pub const CONF: &str = "/etc/multipath.conf";
/// The WWIDs multipath knows (`multipath -a` adds to it).
pub const WWIDS: &str = "/etc/multipath/wwids";
/// How long the step waits for the maps after a change. Maps appear within seconds of
/// `multipath -r`; paths of a slow fabric may take longer to pass their checker.
pub const MAP_BOUND: Duration = Duration::from_secs(60);
/// Time between two looks at `multipath -ll` while waiting.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// The work this step's plan hands back to it ([`Action::Task`] ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    /// Wait until the maps have a healthy path through every session.
    WaitMap,
    /// Rebuild the initramfs with the new configuration.
    RebuildInitramfs,
}

impl Task {
    /// Every task.
    pub const ALL: [Task; 2] = [Task::WaitMap, Task::RebuildInitramfs];

    /// The id in the plan.
    pub fn id(self) -> &'static str {
        match self {
            Task::WaitMap => "wait-map",
            Task::RebuildInitramfs => "rebuild-initramfs",
        }
    }

    /// The task of a plan's id.
    pub fn from_id(id: &str) -> Option<Task> {
        Task::ALL.into_iter().find(|t| t.id() == id)
    }

    /// The plan's action for this task.
    pub fn action(self, description: String) -> Action {
        Action::task(self.id(), description)
    }
}

/// The step implementation.
pub fn step() -> Box<dyn Step> {
    Box::new(Multipath::default())
}

/// How the wait for the maps is bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Poll {
    /// Give up after this long.
    pub bound: Duration,
    /// Look again after this long.
    pub interval: Duration,
}

impl Default for Poll {
    fn default() -> Self {
        Poll {
            bound: MAP_BOUND,
            interval: POLL_INTERVAL,
        }
    }
}

/// The multipath step.
#[derive(Debug, Default)]
pub struct Multipath {
    /// The wait's bound (shortened in tests).
    pub poll: Poll,
    /// Each volume of the answers' list, in order.
    wanted: Option<Vec<Wanted>>,
    /// Session disks that should end up as paths (the LUNs multipath will map).
    expected: Vec<String>,
    /// The initramfs command, when the plan rebuilds it.
    initramfs: Option<Cmd>,
    /// What this run's plan changes in the configuration.
    config_changes: Vec<String>,
}

/// The distro preflight recorded; a dry run without preflight's facts (`--only`) reads
/// os-release itself, as preflight would.
fn distro(cx: &Ctx<'_>) -> Result<Distro, StepError> {
    let read = || -> Result<Option<Distro>, StepError> {
        let text = cx.host.read(Path::new("/etc/os-release"))?;
        Ok(text.and_then(|t| crate::steps::preflight::parse_os_release(&t).distro))
    };
    let known = cx.facts.os.as_ref().and_then(|o| o.distro);
    let found = match known {
        None if cx.options.dry_run => read()?,
        k => k,
    };
    found.ok_or_else(|| {
        StepError::Failed(
            "the distribution is not known yet: run the preflight step first \
             (`iser-wizard run --from preflight`)"
                .into(),
        )
    })
}

fn sessions(cx: &Ctx<'_>) -> Result<Vec<SessionFact>, StepError> {
    if cx.facts.sessions.is_empty() {
        return Err(StepError::Failed(
            "no iSCSI sessions are known yet: run the sessions step first \
             (`iser-wizard run --from sessions`)"
                .into(),
        ));
    }
    Ok(cx.facts.sessions.clone())
}

fn target_iqn(cx: &Ctx<'_>) -> String {
    cx.facts
        .target_iqn
        .clone()
        .or_else(|| cx.facts.sessions.first().map(|s| s.target.clone()))
        .unwrap_or_else(|| "the target".into())
}

fn initramfs_cmd(d: Distro) -> Cmd {
    let long = Duration::from_secs(900);
    match d {
        Distro::Rhel | Distro::Sles => {
            Cmd::change(["dracut", "--force", "--add", "multipath"]).timeout(long)
        }
        Distro::Debian | Distro::Ubuntu => Cmd::change(["update-initramfs", "-u"]).timeout(long),
    }
}

fn load_driver() -> Action {
    Action::run(
        Cmd::change(["modprobe", "dm_multipath"]),
        "the kernel's multipath driver is not loaded",
    )
}

fn reload_maps() -> Action {
    Action::run(
        Cmd::change(["multipath", "-r"]),
        "make the maps of the target's LUNs now",
    )
}

impl Multipath {
    /// Each volume's WWID (or "auto"), in the order of the answers. At a terminal, after a
    /// WWID typed at the prompt, the operator may add another volume (default no).
    fn wanted(&mut self, cx: &mut Ctx<'_>) -> Result<Vec<Wanted>, StepError> {
        if let Some(w) = &self.wanted {
            return Ok(w.clone());
        }
        let mut out: Vec<Wanted> = Vec::new();
        let mut i = 0;
        while i < cx.ask.answers().volume_list().len() {
            let answers = cx.ask.answers();
            let key = answers.volume_key(i, "wwid");
            let asked = answers.volume_list()[i].wwid.is_none();
            let question = if answers.volume_list().len() == 1 {
                "WWID of the volume (\"auto\": the one empty LUN of the target)".to_string()
            } else {
                format!("WWID of {}", answers.volume_label(i))
            };
            // "auto" is offered for one volume only: the first that has none yet.
            let default = (!out.contains(&Wanted::Auto)).then_some(Wwid::Auto);
            let a = cx
                .ask
                .want(&key, &question, default, |a| &mut a.volume_mut(i).wwid)?;
            let w = Wanted::from(&a);
            if w == Wanted::Auto && out.contains(&Wanted::Auto) {
                return Err(StepError::Failed(format!(
                    "{key} is \"auto\", but another volume already is: only one volume can be \
                     the one empty LUN of the target; give this one its WWID (`multipath -ll` \
                     shows it in parentheses)"
                )));
            }
            if let Wanted::Wwid(id) = &w {
                if out.contains(&w) {
                    return Err(StepError::Failed(format!(
                        "{key}: {id} is the WWID of another volume too: each volume is its own LUN"
                    )));
                }
            }
            out.push(w);
            i += 1;
            let last = i == cx.ask.answers().volume_list().len();
            if asked && last && cx.ask.interactive() {
                // Keyed by the volume it follows, so a script can answer each one.
                let more = cx.ask.prompt(
                    &format!("add_volume[{}]", i - 1),
                    "Add another volume?",
                    crate::steps::Question::Confirm { default: false },
                )?;
                if more == crate::steps::Reply::Yes(true) {
                    // An empty entry: its WWID is asked next, the rest by the filesystem step.
                    cx.ask.answers_mut().volume_mut(i);
                }
            }
        }
        self.wanted = Some(out.clone());
        Ok(out)
    }

    /// RHEL's multipath.conf when it is absent; returns whether the plan creates it.
    fn plan_conf(
        &mut self,
        cx: &Ctx<'_>,
        plan: &mut Plan,
        distro: Distro,
    ) -> Result<bool, StepError> {
        let conf = cx.host.read(Path::new(CONF))?;
        let created_conf = conf.is_none() && distro == Distro::Rhel;
        if created_conf {
            plan.push(Action::write(
                CONF,
                None,
                RHEL_CONF.to_string(),
                0o644,
                "RHEL's multipathd does not start without this file; the settings \
                 `mpathconf --enable` writes (E-Series needs no devices section)",
            ));
            self.config_changes.push(format!("{CONF} created"));
        }
        Ok(created_conf)
    }

    /// The initramfs rebuild when asked for and the configuration changed now or in a run
    /// that stopped before its rebuild; otherwise a note when it changed.
    fn plan_initramfs(
        &mut self,
        cx: &mut Ctx<'_>,
        plan: &mut Plan,
        distro: Distro,
        rebuild: bool,
        config_changed: bool,
        pending: bool,
    ) {
        if rebuild && (config_changed || pending) {
            let cmd = initramfs_cmd(distro);
            plan.push(Task::RebuildInitramfs.action(format!(
                "{cmd}    # the initramfs gets the {} multipath configuration",
                if config_changed { "new" } else { "changed" }
            )));
            if !cx.options.dry_run {
                // Not a record but a journal: kept until the rebuild is done (the engine
                // saves the facts after every action), so a run stopped between the change
                // and the rebuild rebuilds next time, though the configuration then matches.
                cx.facts.multipath.initramfs_pending = true;
            }
            self.initramfs = Some(cmd);
        } else if config_changed {
            plan.note(format!(
                "the initramfs keeps the old multipath configuration (multipath.rebuild_initramfs \
                 is false); rebuild it with `{}` before relying on multipath at boot",
                initramfs_cmd(distro)
            ));
        }
    }

    /// The wait for the maps; `sessions`: how many there are, when known.
    fn wait_action(&self, wanted: &[Wanted], sessions: Option<usize>) -> Action {
        let ids: Vec<&str> = wanted
            .iter()
            .filter_map(|w| match w {
                Wanted::Wwid(w) => Some(w.as_str()),
                Wanted::Auto => None,
            })
            .collect();
        Task::WaitMap.action(format!(
            "wait (at most {} s) until multipath -ll shows the {} with a healthy path \
             through each of the {}",
            self.poll.bound.as_secs(),
            match ids[..] {
                _ if ids.len() < wanted.len() => "maps of the target's LUNs".to_string(),
                [one] => format!("map of {one}"),
                _ => format!("maps of {}", ids.join(", ")),
            },
            match sessions {
                Some(n) => format!("{n} sessions"),
                None => "target's sessions".into(),
            }
        ))
    }

    /// A dry run before the sessions exist or multipath-tools is installed: what a real
    /// run does, from the answers, with what only it learns as placeholders.
    fn plan_from_answers(
        &mut self,
        cx: &mut Ctx<'_>,
        plan: &mut Plan,
        distro: Distro,
        wanted: &[Wanted],
        rebuild: bool,
        created_conf: bool,
    ) -> Result<(), StepError> {
        let service = if cx.planning_without("multipathd") {
            ServiceState::absent()
        } else {
            service_state(cx)?
        };
        if !cx.host.exists(Path::new("/sys/module/dm_multipath")) {
            plan.push(load_driver());
        }
        for w in wanted {
            let wwid = match w {
                Wanted::Wwid(w) => w.clone(),
                Wanted::Auto => plan.learn("WWID of the volume, learned after login"),
            };
            plan.push(Action::run(
                Cmd::change(["multipath", "-a", &wwid]),
                format!(
                    "add the volume's WWID to {WWIDS} when `multipath -t` shows a \
                     find_multipaths that would leave it unmapped (strict, Debian's default); \
                     the real run does this for every LUN of the target, naming one of its \
                     path devices"
                ),
            ));
            self.config_changes.push(format!("{wwid} added to {WWIDS}"));
        }
        for a in service.actions(created_conf) {
            plan.push(a);
        }
        plan.push(reload_maps());
        self.plan_initramfs(cx, plan, distro, rebuild, true, false);
        plan.push(self.wait_action(wanted, None));
        Ok(())
    }

    /// The session disks that are no path of any map, grouped by WWID (udev's ID_SERIAL, what
    /// multipath uses by default), leaving out what multipath never maps.
    fn unmapped(
        &self,
        cx: &Ctx<'_>,
        sessions: &[SessionFact],
        maps: &[Map],
        plan: &mut Plan,
    ) -> Result<BTreeMap<String, Vec<String>>, StepError> {
        let paths: BTreeSet<&str> = maps
            .iter()
            .flat_map(|m| m.paths())
            .filter_map(|p| p.dev.as_deref())
            .collect();
        let disks: BTreeSet<&str> = sessions
            .iter()
            .flat_map(|s| s.disks.iter().map(String::as_str))
            .filter(|d| !paths.contains(d))
            .collect();
        let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
        // Disks that just logged in may not have their udev properties yet (seen in the
        // lab: "no WWID" for a path a second later fully set up). Only when a disk's udev
        // record lacks its WWID: wait (bounded, no process) for exactly those records; when
        // one is still without it, or there is no udev database (not the running system),
        // `udevadm settle` decides, as it waits for every event udev has yet to see.
        let pending: Vec<&str> = disks
            .iter()
            .copied()
            .filter_map(|d| match udev_has_wwid(cx, d) {
                Ok(true) => None,
                Ok(false) => Some(Ok(d)),
                Err(e) => Some(Err(e)),
            })
            .collect::<Result<_, StepError>>()?;
        if !pending.is_empty() {
            // Within the step's own wait when that is shorter (tests).
            let wait = Wait::new(
                UDEV_WAIT.bound.min(self.poll.bound),
                UDEV_WAIT.interval.min(self.poll.interval),
            );
            let done = cx.host.exists(Path::new("/run/udev")) && wait_for_udev(cx, &pending, wait)?;
            if !done && cx.host.which("udevadm").is_some() {
                cx.host.run(
                    &Cmd::probe(["udevadm", "settle", "--timeout=10"])
                        .timeout(Duration::from_secs(15)),
                )?;
            }
        }
        for d in disks {
            let props = udev_properties(cx, d)?;
            // E-Series presents an access LUN for in-band management; the built-in
            // hardware table blacklists it, so it never gets a map.
            if props.get("ID_MODEL").map(String::as_str) == Some("Universal_Xport") {
                continue;
            }
            match props.get("ID_SERIAL") {
                Some(w) if !w.is_empty() => groups.entry(w.clone()).or_default().push(d.into()),
                _ => {
                    plan.note(format!(
                        "/dev/{d} has no WWID (udev ID_SERIAL): multipath ignores it. A LIO \
                         backstore needs its own wwn/vpd_unit_serial"
                    ));
                }
            }
        }
        Ok(groups)
    }

    /// The changes that make the LUNs mapped; returns whether the configuration changes.
    fn plan_mapping(
        &mut self,
        cx: &Ctx<'_>,
        plan: &mut Plan,
        wanted: &[Wanted],
        sessions: &[SessionFact],
        maps: &[Map],
        created_conf: bool,
    ) -> Result<bool, StepError> {
        let groups = self.unmapped(cx, sessions, maps, plan)?;
        let mut expected: Vec<String> = maps
            .iter()
            .flat_map(|m| m.paths())
            .filter_map(|p| p.dev.clone())
            .filter(|d| sessions.iter().any(|s| s.disks.contains(d)))
            .collect();
        for (i, w) in wanted.iter().enumerate() {
            let Wanted::Wwid(w) = w else { continue };
            let key = cx.ask.answers().volume_key(i, "wwid");
            let seen = maps.iter().any(|m| &m.wwid == w) || groups.contains_key(w);
            if !seen {
                let mut all: Vec<String> = target_maps(maps, sessions)
                    .iter()
                    .map(|m| describe(m))
                    .collect();
                all.extend(
                    groups
                        .iter()
                        .map(|(w, d)| format!("{w} (not mapped yet, disks {})", d.join(", "))),
                );
                return Err(StepError::Failed(format!(
                    "no LUN of {} has WWID {w} ({key}); its LUNs: {}. Check the WWID \
                     against the array's volume, and that the volume is mapped to this host",
                    target_iqn(cx),
                    if all.is_empty() {
                        "none".into()
                    } else {
                        all.join("; ")
                    }
                )));
            }
        }
        if groups.is_empty() {
            self.expected = expected;
            return Ok(false);
        }
        let mode = if created_conf {
            FindMultipaths::On
        } else {
            match observe::find_multipaths(cx)? {
                Some(m) => m,
                None => {
                    plan.note(
                        "`multipath -t` shows no find_multipaths: taken as strict, \
                         multipath-tools' own default",
                    );
                    FindMultipaths::Strict
                }
            }
        };
        let wwids = cx.host.read(Path::new(WWIDS))?.unwrap_or_default();
        expected.extend(groups.values().flatten().cloned());
        let to_list = to_list(&groups, maps, &wwids, mode);
        let changed = !to_list.is_empty();
        for (wwid, disks) in to_list {
            plan.push(Action::run(
                Cmd::change(["multipath", "-a", &format!("/dev/{}", disks[0])]),
                format!(
                    "add the LUN's WWID {wwid} to {WWIDS}: with find_multipaths {mode} and {} \
                     path{} it would stay unmapped (only this target's LUNs are added; other \
                     disks are left alone)",
                    disks.len(),
                    if disks.len() == 1 { "" } else { "s" }
                ),
            ));
            self.config_changes.push(format!("{wwid} added to {WWIDS}"));
        }
        expected.sort();
        expected.dedup();
        self.expected = expected;
        Ok(changed)
    }

    /// Find volume `i` among fresh maps and probe what the candidates carry. "auto" chooses
    /// among the maps no other volume is: not another answered WWID, not a volume recorded
    /// by an earlier run.
    fn select(
        &self,
        cx: &Ctx<'_>,
        maps: &[Map],
        sessions: &[SessionFact],
        all: &[Wanted],
        i: usize,
    ) -> Result<Candidate, StepError> {
        let wanted = &all[i];
        let answers = cx.ask.answers();
        let mine = cx.facts.volume_index(answers, i);
        let claimed: BTreeSet<String> = all
            .iter()
            .filter_map(|w| match w {
                Wanted::Wwid(w) => Some(w.clone()),
                Wanted::Auto => None,
            })
            .chain(
                cx.facts
                    .volumes
                    .iter()
                    .enumerate()
                    .filter(|(k, _)| Some(*k) != mine)
                    .filter_map(|(_, v)| v.wwid.as_ref().map(|w| w.to_ascii_lowercase())),
            )
            .collect();
        let target: Vec<&Map> = target_maps(maps, sessions)
            .into_iter()
            .filter(|m| *wanted != Wanted::Auto || !claimed.contains(&m.wwid))
            .collect();
        let others: Vec<Map> = maps
            .iter()
            .filter(|m| !target.iter().any(|t| t.wwid == m.wwid))
            .cloned()
            .collect();
        let mut cands = Vec::new();
        for m in target {
            let data = match wanted {
                Wanted::Wwid(w) if &m.wwid != w => Vec::new(),
                _ => data_on(cx, m)?,
            };
            cands.push(Candidate {
                map: m.clone(),
                data,
            });
        }
        let earlier = mine.and_then(|k| cx.facts.volumes[k].wwid.clone());
        choose(&cands, &others, wanted, earlier.as_deref(), &target_iqn(cx))
            .cloned()
            .map_err(StepError::Failed)
    }

    fn wait_for_maps(&self, cx: &mut Ctx<'_>) -> Result<(), StepError> {
        let wanted = self.wanted.clone().expect("plan ran before task");
        let sessions = sessions(cx)?;
        let start = Instant::now();
        let bound = self.poll.bound.as_secs();
        let done = poll_until(
            cx.host,
            Wait::new(self.poll.bound, self.poll.interval),
            || {
                let (maps, _) = list_maps(cx)?;
                if wanted
                    .iter()
                    .all(|w| complete(&maps, &sessions, w, &self.expected))
                {
                    return Ok(Some(()));
                }
                cx.progress.message(&format!(
                    "waiting for the multipath maps ({} s of at most {bound} s)",
                    start.elapsed().as_secs()
                ));
                Ok(None)
            },
        )?;
        if done.is_none() {
            // What is missing is named by verify, from a fresh look.
            cx.progress
                .message(&format!("the maps were not complete after {bound} s"));
        }
        Ok(())
    }
}

impl Step for Multipath {
    fn name(&self) -> StepName {
        StepName::Multipath
    }

    fn plan(&mut self, cx: &mut Ctx<'_>) -> Result<Plan, StepError> {
        let distro = distro(cx)?;
        // A dry run before the sessions exist (or before multipath-tools is installed) plans
        // from the answers; a real run needs both.
        let from_answers = cx.options.dry_run
            && (cx.facts.sessions.is_empty() || cx.planning_without("multipath"));
        let sessions = if from_answers {
            Vec::new()
        } else {
            sessions(cx)?
        };
        let wanted = self.wanted(cx)?;
        let rebuild = cx.ask.want_yes(
            "multipath.rebuild_initramfs",
            "Rebuild the initramfs when the multipath configuration changes?",
            false,
            |a| &mut a.multipath_mut().rebuild_initramfs,
        )?;
        let mut plan = Plan::new(StepName::Multipath);
        self.config_changes.clear();
        self.initramfs = None;
        let created_conf = self.plan_conf(cx, &mut plan, distro)?;
        if from_answers {
            self.plan_from_answers(cx, &mut plan, distro, &wanted, rebuild, created_conf)?;
            return Ok(plan);
        }

        // multipathd's state and the maps, at once: independent reads.
        let host = cx.host;
        let (service, maps) = crate::steps::both(|| service_state_on(host), || list_maps(cx))?;
        let service = service?;
        if !service.installed() {
            let pkg = distro
                .package_for("multipathd")
                .unwrap_or("multipath-tools");
            return Err(StepError::Failed(format!(
                "the multipathd service is not installed: {}",
                distro.install_hint(&[pkg])
            )));
        }
        let (maps, driver) = maps?;
        if !driver {
            plan.push(load_driver());
        }
        let wwids_changed =
            self.plan_mapping(cx, &mut plan, &wanted, &sessions, &maps, created_conf)?;
        let config_changed = created_conf || wwids_changed;
        let unmapped = {
            let paths: BTreeSet<&str> = maps
                .iter()
                .flat_map(|m| m.paths())
                .filter_map(|p| p.dev.as_deref())
                .collect();
            self.expected.iter().any(|d| !paths.contains(d.as_str()))
        };
        for a in service.actions(created_conf) {
            plan.push(a);
        }
        if config_changed || unmapped {
            plan.push(reload_maps());
        }
        let pending = cx.facts.initramfs_pending();
        self.plan_initramfs(cx, &mut plan, distro, rebuild, config_changed, pending);

        if !plan.is_empty() {
            plan.push(self.wait_action(&wanted, Some(sessions.len())));
        } else {
            // Nothing to change: find the volumes now so a problem stops the run here.
            for i in 0..wanted.len() {
                let c = self.select(cx, &maps, &sessions, &wanted, i)?;
                plan.note(format!(
                    "{}: {} (/dev/mapper/{})",
                    cx.ask.answers().volume_label(i),
                    describe(&c.map),
                    c.map.name
                ));
            }
        }
        Ok(plan)
    }

    fn task(&mut self, cx: &mut Ctx<'_>, id: &str) -> Result<(), StepError> {
        match Task::from_id(id) {
            Some(Task::WaitMap) => self.wait_for_maps(cx),
            Some(Task::RebuildInitramfs) => {
                let cmd = self.initramfs.clone().expect("plan ran before task");
                cx.progress.message(&format!("{cmd}"));
                let out = cx.host.run(&cmd)?;
                if !out.success() {
                    return Err(StepError::command(&cmd, &out, None));
                }
                cx.facts.multipath.initramfs_pending = false;
                cx.facts.legacy_extra = Default::default();
                cx.facts.multipath.initramfs_rebuilt = Some(cmd.to_string());
                Ok(())
            }
            None => Err(StepError::Failed(format!(
                "internal: no task {id:?} in the multipath step"
            ))),
        }
    }

    fn verify(&mut self, cx: &mut Ctx<'_>) -> Result<(), StepError> {
        let wanted = self.wanted(cx)?;
        let sessions = sessions(cx)?;
        let (maps, _) = list_maps(cx)?;
        // Every volume is checked before anything is recorded: a failure records nothing.
        let mut chosen = Vec::new();
        for i in 0..wanted.len() {
            let c = self.select(cx, &maps, &sessions, &wanted, i)?;
            let map = &c.map;
            let (paths, diffs) = path_differences(map, &sessions);
            if !diffs.is_empty() {
                let problems: Vec<String> = diffs.iter().map(ToString::to_string).collect();
                return Err(StepError::Failed(format!(
                    "the multipath map {} ({}) is not healthy:\n    - {}\n  Check the sessions \
                     (`iscsiadm -m session -P 3`) and `multipath -ll {}`",
                    map.name,
                    map.wwid,
                    problems.join("\n    - "),
                    map.wwid
                )));
            }
            chosen.push((c, paths));
        }
        let first = chosen.first().map(|(c, _)| c.clone());
        for (i, (c, paths)) in chosen.into_iter().enumerate() {
            self.record(cx, &wanted, i, &c, paths, &sessions)?;
        }
        // The host-wide record; its map and paths are the first volume's, as before there
        // were several (each volume's are in its own record).
        let changes = std::mem::take(&mut self.config_changes);
        let first_rec = cx
            .facts
            .volume_of(cx.ask.answers(), 0)
            .cloned()
            .unwrap_or_default();
        let m = &mut cx.facts.multipath;
        let kept = std::mem::take(m);
        *m = MultipathFact {
            name: first_rec.map_name.clone(),
            vendor_product: first.as_ref().map(|c| vendor_product(&c.map)),
            hwhandler: first.as_ref().and_then(|c| c.map.hwhandler.clone()),
            paths: first_rec.paths,
            data: first.map(|c| c.data).unwrap_or_default(),
            // A rerun that changes nothing keeps what the run that changed it recorded.
            config_changes: if changes.is_empty() {
                kept.config_changes
            } else {
                changes
            },
            initramfs_pending: kept.initramfs_pending,
            initramfs_rebuilt: kept.initramfs_rebuilt,
        };
        Ok(())
    }
}

/// `VENDOR,PRODUCT` of a map.
fn vendor_product(map: &Map) -> String {
    format!(
        "{},{}",
        map.vendor.as_deref().unwrap_or(""),
        map.product.as_deref().unwrap_or("")
    )
}

impl Multipath {
    /// Volume `i`'s facts and worksheet record, from its verified map.
    fn record(
        &self,
        cx: &mut Ctx<'_>,
        wanted: &[Wanted],
        i: usize,
        chosen: &Candidate,
        paths: Vec<(String, String)>,
        sessions: &[SessionFact],
    ) -> Result<(), StepError> {
        let map = &chosen.map;
        let size_bytes = map
            .dm
            .as_ref()
            .map(|dm| {
                cx.host
                    .read(Path::new(&format!("/sys/class/block/{dm}/size")))
            })
            .transpose()?
            .flatten()
            .and_then(|s| s.trim().parse::<u64>().ok())
            // The size file counts 512-byte sectors whatever the device's sector size.
            .map(|sectors| sectors * 512);
        let map_paths: Vec<MapPathFact> = paths
            .iter()
            .map(|(dev, state)| {
                let via = sessions.iter().find(|x| x.disks.contains(dev));
                MapPathFact {
                    dev: dev.clone(),
                    state: state.clone(),
                    iface: via.map(|x| x.iface.clone()),
                    portal: via.map(|x| x.portal.clone()),
                }
            })
            .collect();
        let name = cx.ask.answers().volume_list()[i]
            .name
            .as_ref()
            .map(ToString::to_string);
        // Its record: found through the answers, or one an earlier run made for this map
        // (chosen then by "auto", say), or a new one.
        let facts = &mut *cx.facts;
        let k = facts
            .volume_index(cx.ask.answers(), i)
            .or_else(|| {
                facts
                    .volumes
                    .iter()
                    .position(|v| v.wwid.as_deref() == Some(map.wwid.as_str()))
            })
            .unwrap_or_else(|| {
                facts.volumes.push(VolumeFact::default());
                facts.volumes.len() - 1
            });
        let v = &mut facts.volumes[k];
        if v.wwid.as_deref() != Some(map.wwid.as_str()) {
            // What later steps recorded about another volume must not be taken for this
            // one's (a partition node, a filesystem UUID).
            *v = VolumeFact::default();
        }
        v.name = name.clone();
        v.auto = wanted[i] == Wanted::Auto;
        v.wwid = Some(map.wwid.clone());
        v.map_device = Some(format!("/dev/mapper/{}", map.name));
        v.map_name = Some(map.name.clone());
        v.paths = map_paths;
        v.size_bytes = size_bytes;
        let rec = crate::worksheets::volume_record_mut(cx.sheet, &map.wwid);
        rec.name = name;
        rec.wwid = Some(map.wwid.clone());
        rec.vendor_product = Some(vendor_product(map));
        rec.size = map.size.clone();
        rec.paths = paths;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
