//! Rendering the files in `templates/`: `{{name}}` placeholders replaced by values that were
//! validated before they got here. An unknown or missing placeholder is a bug, reported as
//! such rather than written into a configuration file.

/// Fill `{{name}}` placeholders. Every placeholder must have a value and every value a
/// placeholder; values must be one line (they were validated, this is the last guard).
pub fn render(template: &str, vars: &[(&str, &str)]) -> Result<String, String> {
    let mut out = String::with_capacity(template.len() + 64);
    let mut used = vec![false; vars.len()];
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| "template: unterminated {{".to_string())?;
        let name = after[..end].trim();
        let i = vars
            .iter()
            .position(|(k, _)| *k == name)
            .ok_or_else(|| format!("template: no value for {{{{{name}}}}}"))?;
        let v = vars[i].1;
        if v.chars().any(|c| c.is_control()) {
            return Err(format!("template: value of {name} has a control character"));
        }
        out.push_str(v);
        used[i] = true;
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    if let Some(i) = used.iter().position(|u| !u) {
        return Err(format!("template: {} is not used", vars[i].0));
    }
    Ok(out)
}

/// 16 bytes as an RFC 9562 UUID string with this version (4 random, 8 custom) and the
/// RFC variant bits set.
pub fn uuid_text(mut b: [u8; 16], version: u8) -> String {
    b[6] = (b[6] & 0x0f) | (version << 4);
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::{render, uuid_text};

    #[test]
    fn uuids_carry_their_version_and_variant() {
        assert_eq!(
            uuid_text([0xff; 16], 4),
            "ffffffff-ffff-4fff-bfff-ffffffffffff"
        );
        assert_eq!(
            uuid_text([0; 16], 8),
            "00000000-0000-8000-8000-000000000000"
        );
    }

    #[test]
    fn fills_placeholders_and_refuses_mistakes() {
        assert_eq!(
            render("a {{x}} b {{ y }}\n", &[("x", "1"), ("y", "2")]).unwrap(),
            "a 1 b 2\n"
        );
        assert!(render("{{x}}", &[]).is_err());
        assert!(render("{{x", &[("x", "1")]).is_err());
        assert!(render("x", &[("x", "1")]).is_err());
        assert!(render("{{x}}", &[("x", "a\nb")]).is_err());
    }
}
