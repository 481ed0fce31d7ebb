//! Text edits as character splices: what a textarea's `input` changed, that edit moved past a
//! concurrent one, and caret positions between the DOM's UTF-16 offsets and automerge's characters.
//!
//! Positions count Unicode scalar values (Rust `char`s), automerge's text index; a textarea's
//! `selectionStart` counts UTF-16 code units. Pure functions, no DOM: the forum page calls them
//! and the browser tests check them on Vietnamese text (precomposed and combining marks).

/// Replace `del` characters at `pos` with `insert`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Splice {
    pub pos: usize,
    pub del: usize,
    pub insert: String,
}

impl Splice {
    /// Changes nothing.
    pub fn is_noop(&self) -> bool {
        self.del == 0 && self.insert.is_empty()
    }

    /// `text` with the splice applied (positions clamped to the text).
    pub fn apply(&self, text: &str) -> String {
        let chars: Vec<char> = text.chars().collect();
        let pos = self.pos.min(chars.len());
        let end = (pos + self.del).min(chars.len());
        let mut out: String = chars[..pos].iter().collect();
        out.push_str(&self.insert);
        out.extend(&chars[end..]);
        out
    }

    /// Where a caret at `p` (characters, before the splice) is after it. A caret at the splice's
    /// start stays before what it inserts, so someone else's typing does not push it along; a
    /// caret inside deleted text lands after the replacement.
    pub fn map_position(&self, p: usize) -> usize {
        let end = self.pos + self.del;
        if p <= self.pos {
            p
        } else if p >= end {
            p - self.del + self.insert.chars().count()
        } else {
            self.pos + self.insert.chars().count()
        }
    }
}

/// The smallest splice that turns `old` into `new`.
///
/// `caret` is the caret in `new` (characters) after the edit, when known: the changed region is
/// then taken to end at or after it, which decides between equally small splices the way the
/// user typed them (typing `a` inside `aa` inserts where the caret was, not at the end of the run;
/// a backspace deletes the character before the caret). Without it the common prefix is taken
/// first.
pub fn minimal_splice(old: &str, new: &str, caret: Option<usize>) -> Splice {
    let a: Vec<char> = old.chars().collect();
    let b: Vec<char> = new.chars().collect();
    let common = a.len().min(b.len());
    let (prefix, suffix) = match caret {
        Some(c) if c <= b.len() => {
            let suffix = common_suffix(&a, &b, common.min(b.len() - c));
            let prefix = common_prefix(&a, &b, (common - suffix).min(c));
            (prefix, suffix)
        }
        _ => {
            let prefix = common_prefix(&a, &b, common);
            (prefix, common_suffix(&a, &b, common - prefix))
        }
    };
    Splice {
        pos: prefix,
        del: a.len() - prefix - suffix,
        insert: b[prefix..b.len() - suffix].iter().collect(),
    }
}

fn common_prefix(a: &[char], b: &[char], max: usize) -> usize {
    a.iter().zip(b).take(max).take_while(|(x, y)| x == y).count()
}

fn common_suffix(a: &[char], b: &[char], max: usize) -> usize {
    a.iter().rev().zip(b.iter().rev()).take(max).take_while(|(x, y)| x == y).count()
}

/// Moves `local` past `remote`, both made against the same text, so that applying the result
/// (in order) after `remote` keeps `remote` whole and does what `local` meant where it can: text
/// `remote` already deleted is not deleted again, and `local`'s insert stays where it was.
/// Returns zero, one or two splices.
pub fn rebase(local: &Splice, remote: &Splice) -> Vec<Splice> {
    let (lp, le) = (local.pos, local.pos + local.del);
    let (rp, re) = (remote.pos, remote.pos + remote.del);
    let r_len = remote.insert.chars().count();
    let out = if le <= rp {
        // Wholly before `remote` (an insert at the same place goes first).
        vec![local.clone()]
    } else if lp >= re {
        vec![Splice { pos: lp - remote.del + r_len, ..local.clone() }]
    } else {
        // Overlapping: delete only what `remote` left, on either side of its insert.
        let before = rp.saturating_sub(lp).min(local.del);
        let after = le.saturating_sub(re.max(lp));
        let mut out = Vec::new();
        let insert_after = if lp < rp { String::new() } else { local.insert.clone() };
        // The later position first, so the earlier one stays valid.
        out.push(Splice { pos: rp + r_len, del: after, insert: insert_after });
        if lp < rp {
            out.push(Splice { pos: lp, del: before, insert: local.insert.clone() });
        }
        out
    };
    out.into_iter().filter(|s| !s.is_noop()).collect()
}

/// The character index of UTF-16 offset `units` in `s` (an offset inside a surrogate pair counts
/// as the character's end).
pub fn utf16_to_chars(s: &str, units: usize) -> usize {
    let mut seen = 0;
    for (i, c) in s.chars().enumerate() {
        if seen >= units {
            return i;
        }
        seen += c.len_utf16();
    }
    s.chars().count()
}

/// The UTF-16 offset of character index `chars` in `s`.
pub fn chars_to_utf16(s: &str, chars: usize) -> usize {
    s.chars().take(chars).map(char::len_utf16).sum()
}

#[cfg(test)]
mod tests;
