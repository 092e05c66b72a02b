//! "Did you mean ...?" help: the closest candidate to a misspelt name by edit distance, used for
//! unknown ops, fields, layer names and weight names.

/// Levenshtein distance between two strings (by chars).
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The candidate closest to `name`, if it is close enough to be a plausible typo (distance at most
/// 2 and at most a third of the longer name, or one is a prefix of the other).
pub fn closest<'a, I>(name: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let mut best: Option<(usize, &'a str)> = None;
    for c in candidates {
        if c == name {
            continue;
        }
        let d = edit_distance(name, c);
        let longest = name.chars().count().max(c.chars().count());
        let plausible = (d <= 2 && d * 3 <= longest.max(3)) || c.eq_ignore_ascii_case(name);
        if plausible && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
}

/// `", did you mean `x`?"` or an empty string.
pub fn did_you_mean<'a, I>(name: &str, candidates: I) -> String
where
    I: IntoIterator<Item = &'a str>,
{
    match closest(name, candidates) {
        Some(c) => format!(", did you mean `{c}`?"),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("conv", "conv"), 0);
        assert_eq!(edit_distance("c9", "c3"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn suggests_only_close_names() {
        assert_eq!(closest("c9", ["c1", "c3", "fc"]), Some("c1"));
        assert_eq!(closest("convv", ["conv", "dense"]), Some("conv"));
        assert_eq!(closest("zzzzzz", ["conv", "dense"]), None);
        assert_eq!(
            did_you_mean("kernal", ["kernel", "stride"]),
            ", did you mean `kernel`?"
        );
    }
}
