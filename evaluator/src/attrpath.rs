//! Attribute paths as the command line spells them (`-A a.b."c.d".0`, a
//! flake's `#fragment`).

/// Splits `a.b."c.d".0` into components.
pub fn split_attr_path(p: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in p.chars() {
        match c {
            '"' => quoted = !quoted,
            '.' if !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    if !cur.is_empty() || !out.is_empty() {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::split_attr_path;

    #[test]
    fn quoted_components_keep_their_dots() {
        assert_eq!(split_attr_path(r#"a.b."c.d".0"#), ["a", "b", "c.d", "0"]);
        assert_eq!(split_attr_path(""), Vec::<String>::new());
        assert_eq!(split_attr_path("a."), ["a", ""]);
    }
}
