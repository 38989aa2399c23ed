//! "Did you mean ...?" for misspelt keys.

use std::vec::Vec;

/// The candidate closest to `word`, if it is close enough to be a likely misspelling:
/// at most one edit per three characters of the candidate (at least one), counting a
/// swap of two neighbouring characters as one edit and ignoring ASCII case.
pub fn suggest(word: &str, candidates: &[&'static str]) -> Option<&'static str> {
    candidates
        .iter()
        .map(|&c| (distance(word, c), c))
        .filter(|&(d, c)| d <= (c.chars().count() / 3).max(1))
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

/// The optimal-string-alignment distance (Levenshtein plus adjacent transpositions),
/// ASCII case-insensitive.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().map(|c| c.to_ascii_lowercase()).collect();
    let b: Vec<char> = b.chars().map(|c| c.to_ascii_lowercase()).collect();
    // d[i][j] = distance between a[..i] and b[..j], rows kept as a flat table.
    let width = b.len() + 1;
    let mut d: Vec<usize> = (0..(a.len() + 1) * width).collect();
    for i in 0..=a.len() {
        d[i * width] = i;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[(i - 1) * width + j] + 1)
                .min(d[i * width + j - 1] + 1)
                .min(d[(i - 1) * width + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[(i - 2) * width + j - 2] + 1);
            }
            d[i * width + j] = best;
        }
    }
    d[a.len() * width + b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(distance("", ""), 0);
        assert_eq!(distance("abc", ""), 3);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("name", "name"), 0);
        assert_eq!(distance("nmae", "name"), 1);
        assert_eq!(distance("chanel_size", "channel_size"), 1);
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("Name", "name"), 0);
    }

    #[test]
    fn suggests_only_close_keys() {
        let keys = ["name", "ram", "elf", "net", "block"];
        assert_eq!(suggest("nmae", &keys), Some("name"));
        assert_eq!(suggest("rma", &keys), Some("ram"));
        assert_eq!(suggest("nets", &keys), Some("net"));
        assert_eq!(suggest("blocks", &keys), Some("block"));
        assert_eq!(suggest("memory", &keys), None);
        assert_eq!(suggest("x", &keys), None);
        assert_eq!(suggest("buffersize", &["buffer_size"]), Some("buffer_size"));
        assert_eq!(suggest("size", &["buffer_size"]), None);
    }
}
