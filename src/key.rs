//! Keys: `parent`, `kind` and `identifier`, rendered into one partition key string.
//!
//! The rendered form is the Go library's, byte for byte: `kind + identifier`, prefixed by
//! `parent + "."` when a parent is set. Tables the Go library wrote therefore read back here.
//! Because `kind` and `identifier` never contain a `.`, the last `.` of a rendered key separates
//! the parent from the rest; the parent itself may contain dots (it is usually a rendered key).

use std::collections::BTreeSet;
use std::fmt;

use base64::Engine as _;
use rand::RngCore as _;

use crate::error::{Error, Result};

/// DynamoDB's limit on the size of a string partition key, in bytes.
pub const MAX_KEY_BYTES: usize = 2048;

/// The separator between a key's parent and the rest of it.
const PARENT_SEPARATOR: char = '.';

/// Identifies one item: an optional parent, a kind and an identifier.
///
/// Fields are public, as in the Go library. A key is checked when it is used: see
/// [`Key::validate`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    /// The parent's rendered key, or empty for a root key.
    pub parent: String,
    /// The kind of the item, e.g. `"User"`. Must be set and must not contain `.`.
    pub kind: String,
    /// The identifier within the kind. Must not contain `.`.
    pub identifier: String,
}

impl Key {
    /// A root key (no parent).
    pub fn new(kind: impl Into<String>, identifier: impl Into<String>) -> Self {
        Self {
            parent: String::new(),
            kind: kind.into(),
            identifier: identifier.into(),
        }
    }

    /// A key under `parent`, whose rendered form becomes this key's parent.
    pub fn with_parent(
        parent: &Key,
        kind: impl Into<String>,
        identifier: impl Into<String>,
    ) -> Self {
        Self {
            parent: parent.to_string(),
            kind: kind.into(),
            identifier: identifier.into(),
        }
    }

    /// A root key of `kind` with a fresh identifier from [`rand_identifier`].
    pub fn random(kind: impl Into<String>) -> Self {
        Self::new(kind, rand_identifier())
    }

    /// True when the kind is not set (the Go library's `Incomplete`).
    pub fn is_incomplete(&self) -> bool {
        self.kind.is_empty()
    }

    /// Checks that the key can be stored, and returns its rendered form.
    ///
    /// The kind must be set, neither kind nor identifier may contain `.`, and the rendered form
    /// must fit DynamoDB's partition key limit of [`MAX_KEY_BYTES`] bytes.
    pub fn validate(&self) -> Result<String> {
        if self.is_incomplete() {
            return Err(Error::validation(format!(
                "key `{self}` is incomplete: its kind is empty"
            )));
        }
        if self.kind.contains(PARENT_SEPARATOR) {
            return Err(Error::validation(format!(
                "key kind `{}` contains `{PARENT_SEPARATOR}`, which separates a key from its parent",
                self.kind
            )));
        }
        if self.identifier.contains(PARENT_SEPARATOR) {
            return Err(Error::validation(format!(
                "key identifier `{}` contains `{PARENT_SEPARATOR}`, which separates a key from its parent",
                self.identifier
            )));
        }
        let rendered = self.to_string();
        if rendered.len() > MAX_KEY_BYTES {
            return Err(Error::validation(format!(
                "key is {} bytes long, over DynamoDB's partition key limit of {MAX_KEY_BYTES} bytes",
                rendered.len()
            )));
        }
        Ok(rendered)
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.parent.is_empty() {
            write!(f, "{}{PARENT_SEPARATOR}", self.parent)?;
        }
        write!(f, "{}{}", self.kind, self.identifier)
    }
}

/// The registry of kinds, used to parse rendered keys back into [`Key`]s.
///
/// A rendered key does not mark where its kind ends, so parsing needs the set of kinds in use.
/// When one registered kind is a prefix of another (`"User"` and `"UserGroup"`), parsing takes
/// the **longest** registered kind that the key starts with: `"UserGroup7"` parses as kind
/// `"UserGroup"`, identifier `"7"`. A [`Store`](crate::Store) given a non-empty registry refuses
/// keys that would not parse back to themselves, such as kind `"User"` with identifier
/// `"Group7"`, so every key it writes can be read back unambiguously.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Kinds {
    kinds: BTreeSet<String>,
}

impl Kinds {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// A registry holding `kinds`; fails on an empty kind or one that contains `.`.
    pub fn of<I, S>(kinds: I) -> Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut registry = Self::new();
        for kind in kinds {
            registry.register(kind)?;
        }
        Ok(registry)
    }

    /// Adds a kind. Returns false if it was already registered.
    pub fn register(&mut self, kind: impl Into<String>) -> Result<bool> {
        let kind = kind.into();
        if kind.is_empty() {
            return Err(Error::validation("a kind cannot be empty"));
        }
        if kind.contains(PARENT_SEPARATOR) {
            return Err(Error::validation(format!(
                "kind `{kind}` contains `{PARENT_SEPARATOR}`, which separates a key from its parent"
            )));
        }
        Ok(self.kinds.insert(kind))
    }

    /// True when `kind` is registered.
    pub fn contains(&self, kind: &str) -> bool {
        self.kinds.contains(kind)
    }

    /// True when no kind is registered.
    pub fn is_empty(&self) -> bool {
        self.kinds.is_empty()
    }

    /// The registered kinds, in lexicographic order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.kinds.iter().map(String::as_str)
    }

    /// Parses a rendered key, taking the longest registered kind that matches.
    pub fn parse(&self, rendered: &str) -> Result<Key> {
        let (parent, rest) = match rendered.rsplit_once(PARENT_SEPARATOR) {
            Some(("", _)) => {
                return Err(Error::validation(format!(
                    "key `{rendered}` has a `{PARENT_SEPARATOR}` but no parent before it"
                )))
            }
            Some((parent, rest)) => (parent, rest),
            None => ("", rendered),
        };
        let kind = self
            .kinds
            .iter()
            .filter(|kind| rest.starts_with(kind.as_str()))
            .max_by_key(|kind| kind.len())
            .ok_or_else(|| {
                Error::validation(format!(
                    "key `{rendered}` does not start with a registered kind"
                ))
            })?;
        let key = Key {
            parent: parent.to_owned(),
            kind: kind.clone(),
            identifier: rest[kind.len()..].to_owned(),
        };
        key.validate()?;
        Ok(key)
    }

    /// Checks that `key` is valid, of a registered kind (when any are registered), and parses
    /// back to itself; returns its rendered form.
    pub(crate) fn check(&self, key: &Key) -> Result<String> {
        let rendered = key.validate()?;
        if self.is_empty() {
            return Ok(rendered);
        }
        if !self.contains(&key.kind) {
            return Err(Error::validation(format!(
                "key `{rendered}` has kind `{}`, which is not registered",
                key.kind
            )));
        }
        match self.parse(&rendered) {
            Ok(parsed) if parsed == *key => Ok(rendered),
            Ok(parsed) => Err(Error::validation(format!(
                "key `{rendered}` would read back as kind `{}` with identifier `{}`: \
                 its identifier starts with another registered kind",
                parsed.kind, parsed.identifier
            ))),
            Err(err) => Err(err),
        }
    }
}

/// A fresh random identifier: 12 URL-safe base64 characters encoding 9 random bytes.
pub fn rand_identifier() -> String {
    let mut bytes = [0u8; 9];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_the_go_library() {
        assert_eq!(Key::new("User", "42").to_string(), "User42");
        let parent = Key::new("User", "42");
        let child = Key::with_parent(&parent, "Post", "7");
        assert_eq!(child.to_string(), "User42.Post7");
        let grandchild = Key::with_parent(&child, "Comment", "x");
        assert_eq!(grandchild.to_string(), "User42.Post7.Commentx");
        assert_eq!(Key::new("Config", "").to_string(), "Config");
    }

    #[test]
    fn parses_what_it_renders() -> Result<()> {
        let kinds = Kinds::of(["User", "Post", "Comment"])?;
        let parent = Key::new("User", "42");
        let child = Key::with_parent(&parent, "Post", "7");
        let grandchild = Key::with_parent(&child, "Comment", "x-_9");
        for key in [parent, child, grandchild] {
            assert_eq!(kinds.parse(&key.to_string())?, key);
        }
        Ok(())
    }

    #[test]
    fn parses_strings_written_by_the_go_library() -> Result<()> {
        let kinds = Kinds::of(["User", "Post"])?;
        let key = kinds.parse("UserAbC-_12345678.PostZ")?;
        assert_eq!(key.parent, "UserAbC-_12345678");
        assert_eq!(key.kind, "Post");
        assert_eq!(key.identifier, "Z");
        Ok(())
    }

    #[test]
    fn overlapping_kinds_resolve_to_the_longest_match() -> Result<()> {
        let kinds = Kinds::of(["User", "UserGroup", "U"])?;
        assert_eq!(kinds.parse("UserGroup7")?, Key::new("UserGroup", "7"));
        assert_eq!(kinds.parse("User7")?, Key::new("User", "7"));
        assert_eq!(kinds.parse("Ux")?, Key::new("U", "x"));
        Ok(())
    }

    #[test]
    fn ambiguous_keys_are_refused_by_a_registry() -> Result<()> {
        let kinds = Kinds::of(["User", "UserGroup"])?;
        let ambiguous = Key::new("User", "Group7");
        assert_eq!(ambiguous.validate()?, "UserGroup7");
        let err = kinds.check(&ambiguous).err();
        assert!(matches!(err, Some(Error::Validation { .. })), "{err:?}");
        assert_eq!(kinds.check(&Key::new("User", "7"))?, "User7");
        assert!(kinds.check(&Key::new("Post", "7")).is_err());
        Ok(())
    }

    #[test]
    fn an_empty_registry_checks_only_the_key_itself() -> Result<()> {
        assert_eq!(Kinds::new().check(&Key::new("Anything", "1"))?, "Anything1");
        Ok(())
    }

    #[test]
    fn invalid_keys_are_validation_errors() {
        let too_long = Key::new("K", "x".repeat(MAX_KEY_BYTES));
        let dotted_parent = Key {
            parent: "a.b".into(),
            kind: "K".into(),
            identifier: "1".into(),
        };
        assert!(
            dotted_parent.validate().is_ok(),
            "a parent may contain dots"
        );
        for key in [
            Key::new("", "1"),
            Key::new("Us.er", "1"),
            Key::new("User", "4.2"),
            too_long,
        ] {
            let err = key.validate().err();
            assert!(
                matches!(err, Some(Error::Validation { .. })),
                "{key:?}: {err:?}"
            );
        }
        let at_limit = Key::new("K", "x".repeat(MAX_KEY_BYTES - 1));
        assert!(at_limit.validate().is_ok());
    }

    #[test]
    fn incomplete_means_no_kind() {
        assert!(Key::default().is_incomplete());
        assert!(!Key::new("User", "").is_incomplete());
    }

    #[test]
    fn unparseable_strings_are_validation_errors() -> Result<()> {
        let kinds = Kinds::of(["User"])?;
        for rendered in ["Post1", ".User1", "", "a.b"] {
            let err = kinds.parse(rendered).err();
            assert!(
                matches!(err, Some(Error::Validation { .. })),
                "{rendered}: {err:?}"
            );
        }
        Ok(())
    }

    #[test]
    fn registering_bad_kinds_fails() {
        assert!(Kinds::of([""]).is_err());
        assert!(Kinds::of(["a.b"]).is_err());
    }

    #[test]
    fn random_identifiers_are_twelve_url_safe_characters() {
        let a = rand_identifier();
        let b = rand_identifier();
        assert_eq!(a.len(), 12);
        assert!(a
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_ne!(a, b);
    }
}
