//! The catalogue of manifestations members relate themselves to, held as versioned data.
//!
//! The built-in catalogue is the 27 manifestations of Resolution 04-NQ/TW (three groups of nine,
//! codes `A1`..`C9`), shipped as `shared/data/catalogue-nq04-27.toml`. Only part of the official
//! text could be checked, so every item carries a [`TextStatus`] and the UI asks
//! [`Item::display_text`], which says whether it got the official text or a topic summary. A branch
//! may replace the catalogue with [`Catalogue::from_toml`] (same format, same codes); every
//! self-assessment records the catalogue id and version it was made against.
//!
//! Parsing and validation only: no IO (the built-in file is compiled in).

use std::collections::BTreeSet;
use std::sync::OnceLock;

use serde::Deserialize;

/// The built-in catalogue file, compiled in.
const BUILTIN_TOML: &str = include_str!("../data/catalogue-nq04-27.toml");

/// Group codes, in order. Every catalogue has exactly these groups.
pub const GROUP_CODES: [&str; 3] = ["A", "B", "C"];

/// Items per group.
pub const ITEMS_PER_GROUP: u8 = 9;

/// Every item code, in order (`A1`..`A9`, `B1`..`B9`, `C1`..`C9`). Every catalogue has exactly
/// these codes, which is what lets a self-assessment's genesis create one entry per code before
/// the catalogue is known.
pub const ITEM_CODES: [&str; 27] = [
    "A1", "A2", "A3", "A4", "A5", "A6", "A7", "A8", "A9", //
    "B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B9", //
    "C1", "C2", "C3", "C4", "C5", "C6", "C7", "C8", "C9",
];

/// The language the UI shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    Vi,
    En,
}

/// How much of an item's official text has been checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TextStatus {
    /// `text` is the official text, checked word for word.
    Verbatim,
    /// Only `text` (possibly empty) is checked; `tail_unverified` is not.
    VerbatimPartial,
    /// No checked text; only the topic is known.
    Missing,
}

/// Whether the degree scale comes from an official form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScaleStatus {
    Official,
    Unverified,
}

/// What the UI should show for an item, and how to label it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemText<'a> {
    /// The official (checked) Vietnamese text.
    Official(&'a str),
    /// An unofficial English rendering of checked official text.
    Translation(&'a str),
    /// A topic summary (Vietnamese), **not** the official text: the UI must say so.
    TopicOnly(&'a str),
}

impl<'a> ItemText<'a> {
    pub fn as_str(&self) -> &'a str {
        match *self {
            ItemText::Official(s) | ItemText::Translation(s) | ItemText::TopicOnly(s) => s,
        }
    }

    pub fn is_topic_only(&self) -> bool {
        matches!(self, ItemText::TopicOnly(_))
    }
}

/// Why a catalogue was refused.
#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    #[error("catalogue is not valid TOML for this format: {0}")]
    Toml(#[from] toml::de::Error),
    #[error("catalogue field `{0}` is empty")]
    EmptyField(&'static str),
    #[error("catalogue must have groups A, B, C with orders 1, 2, 3; found {found}")]
    Groups { found: String },
    #[error("catalogue must have 27 items (9 per group); found {0}")]
    ItemCount(usize),
    #[error("item {code}: code does not match group {group} and number {number}")]
    ItemCode { code: String, group: String, number: u8 },
    #[error("item code {0} appears more than once")]
    DuplicateItem(String),
    #[error("item {code}: {reason}")]
    ItemText { code: String, reason: &'static str },
    #[error("degree scale: {0}")]
    Degrees(String),
    #[error("{field} contains decomposed diacritics; normalise the file to Unicode NFC")]
    NotNfc { field: String },
}

/// A catalogue of manifestations (id, version, groups, items, degree scale). Immutable once built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalogue {
    header: Header,
    groups: Vec<Group>,
    degrees: Vec<Degree>,
    items: Vec<Item>,
}

/// One of the three groups.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    code: String,
    order: u8,
    title: String,
    #[serde(default)]
    title_en: Option<String>,
}

/// One step of the degree scale ("mức độ").
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Degree {
    code: String,
    label: String,
    label_en: String,
}

/// One manifestation.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Item {
    group: String,
    number: u8,
    code: String,
    text_status: TextStatus,
    #[serde(default)]
    text: String,
    #[serde(default)]
    tail_unverified: Option<String>,
    #[serde(default)]
    topic: String,
    #[serde(default)]
    text_en: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    catalogue: Header,
    group: Vec<Group>,
    degree: Vec<Degree>,
    item: Vec<Item>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    id: String,
    version: String,
    document_number: String,
    document_date: String,
    title: String,
    scale_status: ScaleStatus,
}

impl Catalogue {
    /// The built-in catalogue (NQ 04-NQ/TW, 27 items), parsed once.
    pub fn builtin() -> &'static Catalogue {
        static BUILTIN: OnceLock<Catalogue> = OnceLock::new();
        BUILTIN.get_or_init(|| {
            // The file is compiled in and `builtin_catalogue_parses` checks it, so this cannot
            // fail in a tested build.
            Catalogue::from_toml(BUILTIN_TOML).expect("built-in catalogue is valid (see tests)")
        })
    }

    /// Parses and validates a catalogue in the format of `shared/data/catalogue-nq04-27.toml`.
    pub fn from_toml(s: &str) -> Result<Catalogue, CatalogueError> {
        let file: File = toml::from_str(s)?;
        let catalogue =
            Catalogue { header: file.catalogue, groups: file.group, degrees: file.degree, items: file.item };
        catalogue.validate()?;
        Ok(catalogue)
    }

    fn validate(&self) -> Result<(), CatalogueError> {
        for (name, value) in
            [("id", &self.header.id), ("version", &self.header.version), ("title", &self.header.title)]
        {
            if value.trim().is_empty() {
                return Err(CatalogueError::EmptyField(name));
            }
        }
        self.validate_groups()?;
        self.validate_items()?;
        self.validate_degrees()?;
        self.validate_nfc()
    }

    fn validate_groups(&self) -> Result<(), CatalogueError> {
        let mut groups: Vec<(u8, &str)> = self.groups.iter().map(|g| (g.order, g.code.as_str())).collect();
        groups.sort_unstable();
        let expected: Vec<(u8, &str)> = (1..).zip(GROUP_CODES).collect();
        if groups != expected || self.groups.iter().any(|g| g.title.trim().is_empty()) {
            let found = groups.iter().map(|(o, c)| format!("{c}={o}")).collect::<Vec<_>>().join(", ");
            return Err(CatalogueError::Groups { found });
        }
        Ok(())
    }

    fn validate_items(&self) -> Result<(), CatalogueError> {
        if self.items.len() != ITEM_CODES.len() {
            return Err(CatalogueError::ItemCount(self.items.len()));
        }
        let mut seen = BTreeSet::new();
        for item in &self.items {
            let well_formed = GROUP_CODES.contains(&item.group.as_str())
                && (1..=ITEMS_PER_GROUP).contains(&item.number)
                && item.code == format!("{}{}", item.group, item.number);
            if !well_formed {
                return Err(CatalogueError::ItemCode {
                    code: item.code.clone(),
                    group: item.group.clone(),
                    number: item.number,
                });
            }
            if !seen.insert(item.code.as_str()) {
                return Err(CatalogueError::DuplicateItem(item.code.clone()));
            }
            item.validate_text()?;
        }
        // 27 well-formed, distinct codes drawn from 3 groups x 9 numbers: exactly A1..C9.
        Ok(())
    }

    fn validate_degrees(&self) -> Result<(), CatalogueError> {
        if self.degrees.len() < 2 {
            return Err(CatalogueError::Degrees(format!(
                "needs at least 2 steps, found {}",
                self.degrees.len()
            )));
        }
        let mut seen = BTreeSet::new();
        for d in &self.degrees {
            if d.code.trim().is_empty() || d.label.trim().is_empty() || d.label_en.trim().is_empty() {
                return Err(CatalogueError::Degrees("a step has an empty code or label".into()));
            }
            if !seen.insert(d.code.as_str()) {
                return Err(CatalogueError::Degrees(format!("code {} appears more than once", d.code)));
            }
        }
        Ok(())
    }

    /// Rejects text with combining diacritics (U+0300..U+036F). Vietnamese has a precomposed form
    /// for every letter, so NFC Vietnamese never contains them; NFD text (as some editors and
    /// macOS produce) does, and would then compare and search differently.
    fn validate_nfc(&self) -> Result<(), CatalogueError> {
        let decomposed = |s: &str| s.chars().any(|c| ('\u{0300}'..='\u{036F}').contains(&c));
        let mut fields: Vec<(String, &str)> = vec![("catalogue title".into(), self.header.title.as_str())];
        fields.extend(self.groups.iter().map(|g| (format!("group {} title", g.code), g.title.as_str())));
        fields.extend(self.degrees.iter().map(|d| (format!("degree {} label", d.code), d.label.as_str())));
        for item in &self.items {
            fields.push((format!("item {} text", item.code), &item.text));
            fields.push((format!("item {} topic", item.code), &item.topic));
            if let Some(tail) = &item.tail_unverified {
                fields.push((format!("item {} tail_unverified", item.code), tail));
            }
        }
        match fields.into_iter().find(|(_, s)| decomposed(s)) {
            Some((field, _)) => Err(CatalogueError::NotNfc { field }),
            None => Ok(()),
        }
    }

    pub fn id(&self) -> &str {
        &self.header.id
    }

    /// The version string recorded in every self-assessment made against this catalogue.
    pub fn version(&self) -> &str {
        &self.header.version
    }

    pub fn document_number(&self) -> &str {
        &self.header.document_number
    }

    pub fn document_date(&self) -> &str {
        &self.header.document_date
    }

    pub fn title(&self) -> &str {
        &self.header.title
    }

    pub fn scale_status(&self) -> ScaleStatus {
        self.header.scale_status
    }

    /// Groups in order (A, B, C).
    pub fn groups(&self) -> impl Iterator<Item = &Group> {
        GROUP_CODES.iter().filter_map(|code| self.groups.iter().find(|g| g.code == *code))
    }

    /// Items in file order (validated to cover `A1`..`C9`).
    pub fn items(&self) -> &[Item] {
        &self.items
    }

    pub fn item(&self, code: &str) -> Option<&Item> {
        self.items.iter().find(|i| i.code == code)
    }

    /// The items of one group, by number.
    pub fn items_in<'a>(&'a self, group: &str) -> impl Iterator<Item = &'a Item> + use<'a> {
        let group = group.to_owned();
        (1..=ITEMS_PER_GROUP)
            .filter_map(move |n| self.items.iter().find(|i| i.group == group && i.number == n))
    }

    /// The degree scale, from "none" to the strongest.
    pub fn degrees(&self) -> &[Degree] {
        &self.degrees
    }

    pub fn degree(&self, code: &str) -> Option<&Degree> {
        self.degrees.iter().find(|d| d.code == code)
    }
}

impl Group {
    pub fn code(&self) -> &str {
        &self.code
    }

    pub fn order(&self) -> u8 {
        self.order
    }

    /// The title in `lang`; Vietnamese when no English title is given.
    pub fn title(&self, lang: Lang) -> &str {
        match (lang, &self.title_en) {
            (Lang::En, Some(en)) => en,
            _ => &self.title,
        }
    }
}

impl Degree {
    pub fn code(&self) -> &str {
        &self.code
    }

    pub fn label(&self, lang: Lang) -> &str {
        match lang {
            Lang::Vi => &self.label,
            Lang::En => &self.label_en,
        }
    }
}

impl Item {
    fn validate_text(&self) -> Result<(), CatalogueError> {
        let fail = |reason| Err(CatalogueError::ItemText { code: self.code.clone(), reason });
        let has_text = !self.text.trim().is_empty();
        if !has_text && self.topic.trim().is_empty() {
            return fail("has neither text nor topic");
        }
        match self.text_status {
            TextStatus::Verbatim if !has_text => fail("is verbatim but has no text"),
            TextStatus::Verbatim if self.tail_unverified.is_some() => {
                fail("is verbatim but has an unverified tail")
            }
            TextStatus::Missing if has_text => fail("is missing but has text"),
            TextStatus::Missing if self.tail_unverified.is_some() => {
                fail("is missing but has an unverified tail")
            }
            _ if self.text_en.is_some() && self.text_status != TextStatus::Verbatim => {
                fail("has an English text but no verbatim Vietnamese text")
            }
            _ => Ok(()),
        }
    }

    /// `A`, `B` or `C`.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// 1..=9 within the group.
    pub fn number(&self) -> u8 {
        self.number
    }

    /// `A1`..`C9`.
    pub fn code(&self) -> &str {
        &self.code
    }

    pub fn text_status(&self) -> TextStatus {
        self.text_status
    }

    /// The subject of the item in a few words (never the official text).
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The checked part of the official text (empty for missing items).
    pub fn verified_text(&self) -> &str {
        &self.text
    }

    /// For partial items, the rest of the text as remembered but **not checked**.
    pub fn tail_unverified(&self) -> Option<&str> {
        self.tail_unverified.as_deref()
    }

    /// What to show for this item: the official text only when it is fully checked, otherwise the
    /// topic, flagged as a summary. In English, an (unofficial) translation when one exists, else
    /// the Vietnamese.
    pub fn display_text(&self, lang: Lang) -> ItemText<'_> {
        match (self.text_status, lang, &self.text_en) {
            (TextStatus::Verbatim, Lang::En, Some(en)) => ItemText::Translation(en),
            (TextStatus::Verbatim, _, _) => ItemText::Official(&self.text),
            (TextStatus::VerbatimPartial | TextStatus::Missing, _, _) if !self.topic.trim().is_empty() => {
                ItemText::TopicOnly(&self.topic)
            }
            // Validation guarantees text or topic; a partial item without topic shows its checked part.
            (_, _, _) => ItemText::TopicOnly(&self.text),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_catalogue_parses() {
        let c = Catalogue::builtin();
        assert_eq!(c.id(), "nq04-tw-2016-27");
        assert_eq!(c.version(), "2016-10-30");
        assert_eq!(c.document_number(), "04-NQ/TW");
        assert_eq!(c.items().len(), 27);
        assert_eq!(c.groups().map(Group::code).collect::<Vec<_>>(), GROUP_CODES);
        let codes: Vec<&str> = c.groups().flat_map(|g| c.items_in(g.code())).map(Item::code).collect();
        assert_eq!(codes, ITEM_CODES);
        assert_eq!(c.scale_status(), ScaleStatus::Unverified);
        let degrees: Vec<&str> = c.degrees().iter().map(Degree::code).collect();
        assert_eq!(degrees, ["none", "mild", "clear"]);
        assert_eq!(
            c.degree("mild").map(|d| d.label(Lang::Vi)),
            Some("Có biểu hiện ở mức độ nhẹ (chưa đến mức phải xử lý)")
        );
    }

    #[test]
    fn builtin_status_counts_match_the_file_header() {
        let count = |s| Catalogue::builtin().items().iter().filter(|i| i.text_status() == s).count();
        assert_eq!(count(TextStatus::Verbatim), 13);
        assert_eq!(count(TextStatus::VerbatimPartial), 3);
        assert_eq!(count(TextStatus::Missing), 11);
    }

    #[test]
    fn missing_and_partial_items_show_their_topic_flagged() {
        let c = Catalogue::builtin();
        let a6 = c.item("A6").expect("A6");
        assert_eq!(a6.display_text(Lang::Vi), ItemText::TopicOnly(a6.topic()));
        assert!(a6.display_text(Lang::En).is_topic_only());
        let a5 = c.item("A5").expect("A5");
        assert!(a5.display_text(Lang::Vi).is_topic_only());
        assert!(a5.tail_unverified().is_some());
        assert!(!a5.verified_text().is_empty());
    }

    #[test]
    fn verbatim_items_show_official_text_or_translation() {
        let c = Catalogue::builtin();
        let a1 = c.item("A1").expect("A1");
        assert!(
            matches!(a1.display_text(Lang::Vi), ItemText::Official(t) if t.starts_with("Phai nhạt lý tưởng"))
        );
        assert!(matches!(a1.display_text(Lang::En), ItemText::Translation(t) if t.starts_with("Fading")));
        // No English rendering: the Vietnamese official text.
        let c1 = c.item("C1").expect("C1");
        assert_eq!(c1.display_text(Lang::En), ItemText::Official(c1.verified_text()));
    }

    #[test]
    fn malformed_toml_gives_a_clear_error() {
        let err = Catalogue::from_toml("[catalogue\nid = 1").expect_err("malformed");
        assert!(matches!(err, CatalogueError::Toml(_)));
        assert!(err.to_string().starts_with("catalogue is not valid TOML"), "{err}");
        let typo = BUILTIN_TOML.replacen("text_status = \"verbatim\"", "text_stauts = \"verbatim\"", 1);
        let err = Catalogue::from_toml(&typo).expect_err("unknown field");
        assert!(err.to_string().contains("text_stauts"), "{err}");
    }

    #[test]
    fn inconsistent_catalogues_are_refused() {
        let verbatim_without_text = BUILTIN_TOML.replacen(
            "code = \"A6\"\ntext_status = \"missing\"",
            "code = \"A6\"\ntext_status = \"verbatim\"",
            1,
        );
        assert!(matches!(
            Catalogue::from_toml(&verbatim_without_text),
            Err(CatalogueError::ItemText { code, .. }) if code == "A6"
        ));
        let duplicate = BUILTIN_TOML.replacen("number = 2\ncode = \"A2\"", "number = 1\ncode = \"A1\"", 1);
        assert!(
            matches!(Catalogue::from_toml(&duplicate), Err(CatalogueError::DuplicateItem(c)) if c == "A1")
        );
        let bad_code = BUILTIN_TOML.replacen("code = \"A2\"", "code = \"A22\"", 1);
        assert!(matches!(Catalogue::from_toml(&bad_code), Err(CatalogueError::ItemCode { .. })));
        let decomposed = BUILTIN_TOML.replacen("Áp đặt", "A\u{301}p đặt", 1);
        assert!(
            matches!(Catalogue::from_toml(&decomposed), Err(CatalogueError::NotNfc { field }) if field == "item A7 topic")
        );
        let no_group_c = BUILTIN_TOML.replacen("code = \"C\"\norder = 3", "code = \"D\"\norder = 3", 1);
        assert!(matches!(Catalogue::from_toml(&no_group_c), Err(CatalogueError::Groups { .. })));
    }

    #[test]
    fn a_branch_can_replace_the_catalogue() {
        let replaced = BUILTIN_TOML
            .replacen("version = \"2016-10-30\"", "version = \"2016-10-30+official-1\"", 1)
            .replacen(
                "code = \"A7\"\ntext_status = \"missing\"\ntext = \"\"",
                "code = \"A7\"\ntext_status = \"verbatim\"\ntext = \"Văn bản chính thức.\"",
                1,
            );
        let c = Catalogue::from_toml(&replaced).expect("valid replacement");
        assert_eq!(c.version(), "2016-10-30+official-1");
        assert_eq!(
            c.item("A7").map(|i| i.display_text(Lang::Vi)),
            Some(ItemText::Official("Văn bản chính thức."))
        );
    }
}
