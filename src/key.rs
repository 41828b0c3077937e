//! Keys: `parent`, `kind` and `identifier`, rendered into one partition key string.
//!
//! The rendered form is the Go library's, byte for byte: `kind + identifier`, prefixed by
//! `parent + "."` when a parent is set. Tables the Go library wrote therefore read back here.
//! Because `kind` and `identifier` never contain a `.`, the last `.` of a rendered key separates
//! the parent from the rest; the parent itself may contain dots (it is usually a rendered key).
//!
//! A key's identity is its rendered form: it names one item, so two keys are equal (and hash
//! and order alike) exactly when they render the same, however they were built.
//! `Key::new("Order", "Item5")` and `Key::new("OrderItem", "5")` both render `OrderItem5`: they
//! are the same key, and a store treats them as one item, as the Go library's table does.
//! Register the kinds in use ([`Kinds`]) to have a store refuse keys whose kind and identifier
//! would read back differently.
//!
//! Identifiers that contain a `.` (e-mail addresses, dotted versions) go through
//! [`escape_identifier`], a reversible percent-escape of `.` and `%`, and come back with
//! [`unescape_identifier`].
//!
//! This module is the bottom of the crate: it depends on no other module, and its errors are
//! its own ([`KeyError`]), converted into [`Error`](crate::Error) by `?`.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use rand::RngCore as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// DynamoDB's limit on the size of a string partition key, in bytes.
pub const MAX_KEY_BYTES: usize = 2048;

/// The separator between a key's parent and the rest of it.
const PARENT_SEPARATOR: char = '.';

/// Why a key could not be built, parsed or used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The kind was empty.
    #[error("a key's kind cannot be empty")]
    EmptyKind,
    /// A kind or identifier contained the parent separator `.`.
    #[error(
        "key {part} `{value}` contains `.`, which separates a key from its parent (an \
         identifier can carry one escaped: see `quickstore::escape_identifier`)"
    )]
    Separator {
        /// `"kind"` or `"identifier"`.
        part: &'static str,
        /// The offending kind or identifier.
        value: String,
    },
    /// The rendered key is longer than DynamoDB allows for a partition key.
    #[error("key is {bytes} bytes long, over DynamoDB's partition key limit of {limit} bytes")]
    TooLong {
        /// The rendered key's length.
        bytes: usize,
        /// [`MAX_KEY_BYTES`].
        limit: usize,
    },
    /// A rendered key was empty, or had a `.` with nothing before or after it.
    #[error("`{rendered}` is not a rendered key: {reason}")]
    Malformed {
        /// The string that was parsed.
        rendered: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A rendered key does not start with any registered kind.
    #[error("key `{rendered}` does not start with a registered kind")]
    UnknownKind {
        /// The string that was parsed.
        rendered: String,
    },
    /// A store with a kind registry was given a key of another kind.
    #[error("key `{rendered}` has kind `{kind}`, which is not registered")]
    Unregistered {
        /// The key, rendered.
        rendered: String,
        /// Its kind.
        kind: String,
    },
    /// The key would parse back as a different key, because a longer registered kind matches.
    #[error(
        "key `{rendered}` would read back as kind `{read_as}`: its identifier starts with \
         another registered kind"
    )]
    Ambiguous {
        /// The key, rendered.
        rendered: String,
        /// The longer kind that parsing would find.
        read_as: String,
    },
    /// An identifier given to [`unescape_identifier`] was not made by [`escape_identifier`].
    #[error("identifier `{identifier}` is not escaped: {reason}")]
    Escape {
        /// The identifier.
        identifier: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl KeyError {
    /// The error's code: `ValidationException`, the code of
    /// [`Error::Key`](crate::Error::Key), which this error becomes with `?`.
    pub fn code(&self) -> &'static str {
        "ValidationException"
    }
}

fn check_part(part: &'static str, value: &str) -> Result<(), KeyError> {
    if value.contains(PARENT_SEPARATOR) {
        return Err(KeyError::Separator {
            part,
            value: value.to_owned(),
        });
    }
    Ok(())
}

/// Identifies one item: an optional parent, a kind and an identifier.
///
/// A `Key` is valid by construction: the constructors check that the kind is set, that neither
/// kind nor identifier contains `.`, and that the rendered form fits DynamoDB's partition key
/// limit of [`MAX_KEY_BYTES`] bytes. The rendered form is computed once and kept, so using a
/// key costs no formatting.
///
/// A key's identity is its rendered form ([`Key::as_str`]): keys are equal, hash and order
/// alike exactly when they render the same, because they name the same item. Two keys built
/// from different parts can render the same (`("Order", "Item5")` and `("OrderItem", "5")` are
/// both `OrderItem5`); they are then one key, though [`kind`](Key::kind) and
/// [`identifier`](Key::identifier) still say how each was built. A store given a [`Kinds`]
/// registry refuses keys that would read back with other parts.
///
/// ```
/// use quickstore::Key;
/// assert_eq!(Key::new("Order", "Item5")?, Key::new("OrderItem", "5")?);
/// # Ok::<(), quickstore::KeyError>(())
/// ```
///
/// A key serializes as its rendered string, as the Go library's keys did inside stored values.
/// To read one back from a value, use a [`RenderedKey`] field and parse it with [`Kinds`].
#[derive(Clone)]
pub struct Key {
    rendered: Box<str>,
    /// Bytes of the parent in `rendered`; 0 for a root key.
    parent_len: usize,
    /// Bytes of the kind in `rendered`.
    kind_len: usize,
}

impl Key {
    /// A root key (no parent).
    ///
    /// ```
    /// let key = quickstore::Key::new("User", "42")?;
    /// assert_eq!(key.as_str(), "User42");
    /// # Ok::<(), quickstore::KeyError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`KeyError::EmptyKind`] for an empty kind, [`KeyError::Separator`] when the kind or
    /// the identifier holds a `.` (see [`escape_identifier`]), [`KeyError::TooLong`] when the
    /// rendered key is over [`MAX_KEY_BYTES`].
    pub fn new(kind: impl AsRef<str>, identifier: impl AsRef<str>) -> Result<Self, KeyError> {
        Self::from_parts("", kind.as_ref(), identifier.as_ref())
    }

    /// A key under `parent`: the parent's rendered form becomes this key's prefix.
    ///
    /// ```
    /// use quickstore::Key;
    /// let post = Key::with_parent(&Key::new("User", "42")?, "Post", "7")?;
    /// assert_eq!(post.as_str(), "User42.Post7");
    /// assert_eq!(post.parent(), Some("User42"));
    /// # Ok::<(), quickstore::KeyError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Key::new`]; [`KeyError::TooLong`] counts the parent too.
    pub fn with_parent(
        parent: &Key,
        kind: impl AsRef<str>,
        identifier: impl AsRef<str>,
    ) -> Result<Self, KeyError> {
        Self::from_parts(parent.as_str(), kind.as_ref(), identifier.as_ref())
    }

    /// A root key of `kind` with a fresh identifier from [`rand_identifier`].
    ///
    /// # Errors
    ///
    /// As [`Key::new`]: an empty kind, or one holding a `.`.
    pub fn random(kind: impl AsRef<str>) -> Result<Self, KeyError> {
        Self::new(kind, rand_identifier())
    }

    /// Builds a key from a parent's rendered form (empty for none), a kind and an identifier.
    fn from_parts(parent: &str, kind: &str, identifier: &str) -> Result<Self, KeyError> {
        if kind.is_empty() {
            return Err(KeyError::EmptyKind);
        }
        check_part("kind", kind)?;
        check_part("identifier", identifier)?;
        let separator = usize::from(!parent.is_empty());
        let bytes = parent.len() + separator + kind.len() + identifier.len();
        if bytes > MAX_KEY_BYTES {
            return Err(KeyError::TooLong {
                bytes,
                limit: MAX_KEY_BYTES,
            });
        }
        let mut rendered = String::with_capacity(bytes);
        if !parent.is_empty() {
            rendered.push_str(parent);
            rendered.push(PARENT_SEPARATOR);
        }
        rendered.push_str(kind);
        rendered.push_str(identifier);
        Ok(Self {
            rendered: rendered.into_boxed_str(),
            parent_len: parent.len(),
            kind_len: kind.len(),
        })
    }

    /// The rendered form: the partition key value stored in the table.
    pub fn as_str(&self) -> &str {
        &self.rendered
    }

    /// The parent's rendered form, or `None` for a root key.
    pub fn parent(&self) -> Option<&str> {
        (self.parent_len > 0).then(|| &self.rendered[..self.parent_len])
    }

    /// The kind, e.g. `"User"`.
    pub fn kind(&self) -> &str {
        &self.rendered[self.kind_start()..self.kind_start() + self.kind_len]
    }

    /// The identifier within the kind; may be empty.
    pub fn identifier(&self) -> &str {
        &self.rendered[self.kind_start() + self.kind_len..]
    }

    /// Kind and identifier: the part after the parent.
    fn own_part(&self) -> &str {
        &self.rendered[self.kind_start()..]
    }

    fn kind_start(&self) -> usize {
        if self.parent_len > 0 {
            self.parent_len + PARENT_SEPARATOR.len_utf8()
        } else {
            0
        }
    }
}

/// Where a key's parent and kind end in its rendered form, which the rendered form alone does
/// not say: enough to build the [`Key`] again from it without a registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Parts {
    parent_len: u16,
    kind_len: u16,
}

impl Key {
    /// Where this key's parts end.
    pub(crate) fn parts(&self) -> Parts {
        // Both fit: a rendered key is at most `MAX_KEY_BYTES` (2048) bytes long.
        Parts {
            parent_len: self.parent_len as u16,
            kind_len: self.kind_len as u16,
        }
    }

    /// The key of a rendered form, as built: from `parts` when known, else parsed with
    /// `kinds`. When neither tells the kind apart from the identifier (a key recovered from a
    /// journal by a store without a registry), the whole part after the parent is taken as the
    /// kind, with an empty identifier; the key still equals the one it was built as, since a
    /// key's identity is its rendered form.
    pub(crate) fn rebuild(rendered: &str, parts: Option<Parts>, kinds: &Kinds) -> Key {
        let split = parts.and_then(|parts| {
            let parent_len = usize::from(parts.parent_len);
            let kind_start = parent_len + usize::from(parent_len > 0);
            let identifier_start = kind_start + usize::from(parts.kind_len);
            let parent = rendered.get(..parent_len)?;
            let kind = rendered.get(kind_start..identifier_start)?;
            let identifier = rendered.get(identifier_start..)?;
            Key::from_parts(parent, kind, identifier).ok()
        });
        split
            .filter(|key| key.as_str() == rendered)
            .or_else(|| kinds.parse(rendered).ok())
            .unwrap_or_else(|| {
                let (parent, rest) = rendered
                    .rsplit_once(PARENT_SEPARATOR)
                    .unwrap_or(("", rendered));
                Key {
                    rendered: rendered.into(),
                    parent_len: parent.len(),
                    kind_len: rest.len(),
                }
            })
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.rendered == other.rendered
    }
}

impl Eq for Key {}

impl std::hash::Hash for Key {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.rendered.hash(state);
    }
}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.rendered.cmp(&other.rendered)
    }
}

impl std::borrow::Borrow<str> for Key {
    fn borrow(&self) -> &str {
        &self.rendered
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.rendered)
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("parent", &self.parent().unwrap_or(""))
            .field("kind", &self.kind())
            .field("identifier", &self.identifier())
            .finish()
    }
}

impl Serialize for Key {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// A key in its rendered form, checked to be well formed: what a [`Key`] stored inside a value
/// reads back as.
///
/// A rendered key does not say where its kind ends, so it cannot become a [`Key`] without the
/// registry of kinds: [`RenderedKey::parse`] (or [`Kinds::parse`]) does that. This newtype is
/// the serde side of the split. It serializes as a string attribute (`S`), exactly as the Go
/// library stored keys inside values, and deserializes with the checks that need no registry,
/// so a struct can derive both `Serialize` and `Deserialize` with a key field:
///
/// ```
/// use quickstore::{Key, Kinds, RenderedKey};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct Post { author: RenderedKey, title: String }
///
/// let kinds = Kinds::of(["User", "Post"])?;
/// let author = Key::new("User", "ada")?;
/// let post = Post { author: RenderedKey::from(&author), title: "Notes".into() };
/// assert_eq!(post.author.parse(&kinds)?, author);
/// # Ok::<(), quickstore::Error>(())
/// ```
///
/// (A `DeserializeSeed` carrying the registry would parse during deserialization, but derived
/// `Deserialize` impls cannot pass a seed to a field; the newtype keeps derives working.)
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct RenderedKey(Box<str>);

impl RenderedKey {
    /// The rendered key.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Parses the key with a registry of kinds; see [`Kinds::parse`].
    ///
    /// # Errors
    ///
    /// As [`Kinds::parse`].
    pub fn parse(&self, kinds: &Kinds) -> Result<Key, KeyError> {
        kinds.parse(&self.0)
    }
}

impl FromStr for RenderedKey {
    type Err = KeyError;

    /// Checks what can be checked without a registry: not empty, within [`MAX_KEY_BYTES`], and
    /// no `.` without a parent before it or a kind after it.
    fn from_str(rendered: &str) -> Result<Self, KeyError> {
        split(rendered)?;
        Ok(Self(rendered.into()))
    }
}

impl From<&Key> for RenderedKey {
    fn from(key: &Key) -> Self {
        Self(key.rendered.clone())
    }
}

impl From<Key> for RenderedKey {
    fn from(key: Key) -> Self {
        Self(key.rendered)
    }
}

impl fmt::Display for RenderedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for RenderedKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let rendered = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        rendered.parse().map_err(serde::de::Error::custom)
    }
}

/// Splits a rendered key into its parent (empty for none) and the rest, checking its shape.
fn split(rendered: &str) -> Result<(&str, &str), KeyError> {
    let malformed = |reason| KeyError::Malformed {
        rendered: rendered.to_owned(),
        reason,
    };
    if rendered.len() > MAX_KEY_BYTES {
        return Err(KeyError::TooLong {
            bytes: rendered.len(),
            limit: MAX_KEY_BYTES,
        });
    }
    match rendered.rsplit_once(PARENT_SEPARATOR) {
        None if rendered.is_empty() => Err(malformed("it is empty")),
        None => Ok(("", rendered)),
        Some(("", _)) => Err(malformed("it has a `.` with no parent before it")),
        Some((_, "")) => Err(malformed("it ends with `.`")),
        Some(split) => Ok(split),
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
///
/// Parsing and checking cost a handful of set lookups (one per distinct kind length), however
/// many kinds are registered.
///
/// # Examples
///
/// Reading back the keys of a table the Go library wrote, and a store that refuses keys that
/// would not read back:
///
/// ```
/// use quickstore::{Error, Key, KeyError, Kinds, Store};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let kinds = Kinds::of(["User", "UserGroup", "Post"])?;
/// let post = kinds.parse("User42.Post7")?;
/// assert_eq!((post.parent(), post.kind(), post.identifier()), (Some("User42"), "Post", "7"));
///
/// # let dir = tempfile::tempdir()?;
/// # let backend = quickstore::EmbeddedBackend::open(dir.path().join("items.redb"))?;
/// let store = Store::builder(backend).kinds(kinds).open().await?;
/// // Kind `User` with identifier `Group7` renders as `UserGroup7`, which reads back as a
/// // `UserGroup`: the store refuses it rather than write a key it cannot read back.
/// let ambiguous = Key::new("User", "Group7")?;
/// let err = store.upsert(&ambiguous, &serde_json::json!({})).await.unwrap_err();
/// assert!(matches!(err, Error::Key(KeyError::Ambiguous { .. })));
/// # store.close().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Kinds {
    kinds: BTreeSet<String>,
    /// The distinct lengths of registered kinds, longest first.
    lengths: Vec<usize>,
    /// Kinds that are a strict prefix of another registered kind: only their keys can be
    /// ambiguous.
    prefixes: BTreeSet<String>,
}

impl Kinds {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// A registry holding `kinds`; fails on an empty kind or one that contains `.`.
    ///
    /// # Errors
    ///
    /// [`KeyError::EmptyKind`] or [`KeyError::Separator`] for a kind that cannot be one.
    pub fn of<I, S>(kinds: I) -> Result<Self, KeyError>
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
    ///
    /// # Errors
    ///
    /// As [`Kinds::of`].
    pub fn register(&mut self, kind: impl Into<String>) -> Result<bool, KeyError> {
        let kind = kind.into();
        if kind.is_empty() {
            return Err(KeyError::EmptyKind);
        }
        check_part("kind", &kind)?;
        if self.kinds.contains(&kind) {
            return Ok(false);
        }
        for other in &self.kinds {
            if other.starts_with(kind.as_str()) {
                self.prefixes.insert(kind.clone());
            } else if kind.starts_with(other.as_str()) {
                self.prefixes.insert(other.clone());
            }
        }
        if let Err(at) = self.lengths.binary_search_by(|len| kind.len().cmp(len)) {
            self.lengths.insert(at, kind.len());
        }
        self.kinds.insert(kind);
        Ok(true)
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
    ///
    /// ```
    /// use quickstore::{Key, Kinds};
    /// let kinds = Kinds::of(["User", "Post"])?;
    /// let key = kinds.parse("User42.Post7")?;
    /// assert_eq!(key, Key::with_parent(&Key::new("User", "42")?, "Post", "7")?);
    /// # Ok::<(), quickstore::KeyError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`KeyError::Malformed`] for an empty string or a misplaced `.`, [`KeyError::UnknownKind`]
    /// when a part starts with no registered kind, and the errors of [`Key::new`] for the parts.
    pub fn parse(&self, rendered: &str) -> Result<Key, KeyError> {
        let (parent, rest) = split(rendered)?;
        let kind = self
            .longest_kind_of(rest, 0)
            .ok_or_else(|| KeyError::UnknownKind {
                rendered: rendered.to_owned(),
            })?;
        Key::from_parts(parent, &rest[..kind], &rest[kind..])
    }

    /// The length of the longest registered kind, longer than `longer_than` bytes, that `rest`
    /// starts with.
    fn longest_kind_of(&self, rest: &str, longer_than: usize) -> Option<usize> {
        self.lengths
            .iter()
            .copied()
            .take_while(|&len| len > longer_than)
            .find(|&len| {
                len <= rest.len() && rest.is_char_boundary(len) && self.contains(&rest[..len])
            })
    }

    /// Checks that `key` is of a registered kind (when any are registered) and parses back to
    /// itself. Inlined: a store without a registry, the common case, checks nothing.
    #[inline]
    pub(crate) fn check(&self, key: &Key) -> Result<(), KeyError> {
        if self.is_empty() {
            return Ok(());
        }
        self.check_registered(key)
    }

    /// [`check`](Self::check) against a registry that is not empty.
    fn check_registered(&self, key: &Key) -> Result<(), KeyError> {
        let kind = key.kind();
        if !self.contains(kind) {
            return Err(KeyError::Unregistered {
                rendered: key.as_str().to_owned(),
                kind: kind.to_owned(),
            });
        }
        if self.prefixes.contains(kind) {
            let rest = key.own_part();
            if let Some(longer) = self.longest_kind_of(rest, kind.len()) {
                return Err(KeyError::Ambiguous {
                    rendered: key.as_str().to_owned(),
                    read_as: rest[..longer].to_owned(),
                });
            }
        }
        Ok(())
    }
}

/// Escapes an identifier so that it can hold a `.`: `%` becomes `%25` and `.` becomes `%2E`,
/// and nothing else changes. [`unescape_identifier`] reverses it.
///
/// Use it for every identifier of a kind whose identifiers may hold a `.` (e-mail addresses,
/// dotted versions), so that each reads back with [`unescape_identifier`]. The escaped key is
/// an ordinary key: it renders without a `.` of its own, so [`Kinds::parse`] reads it back,
/// and the Go library reads it too, as the escaped string (it has no unescaping of its own).
/// Identifiers without `.` or `%` are returned as they are, borrowed.
///
/// ```
/// use quickstore::{escape_identifier, unescape_identifier, Key, Kinds};
/// let key = Key::new("User", escape_identifier("ada.lovelace@example.com"))?;
/// assert_eq!(key.as_str(), "Userada%2Elovelace@example%2Ecom");
/// let read = Kinds::of(["User"])?.parse(key.as_str())?;
/// assert_eq!(unescape_identifier(read.identifier())?, "ada.lovelace@example.com");
/// # Ok::<(), quickstore::KeyError>(())
/// ```
pub fn escape_identifier(identifier: &str) -> std::borrow::Cow<'_, str> {
    if !identifier.contains(['.', ESCAPE]) {
        return identifier.into();
    }
    let mut escaped = String::with_capacity(identifier.len() + 8);
    for c in identifier.chars() {
        match c {
            '.' => escaped.push_str(ESCAPED_DOT),
            ESCAPE => escaped.push_str(ESCAPED_ESCAPE),
            c => escaped.push(c),
        }
    }
    escaped.into()
}

/// Reverses [`escape_identifier`]: `%2E` becomes `.` and `%25` becomes `%`.
///
/// # Errors
///
/// [`KeyError::Escape`] when [`escape_identifier`] could not have written `identifier`: it
/// holds a `.`, or a `%` followed by neither `2E` nor `25`. So every identifier has exactly one
/// escaped form, and no two escaped identifiers read back the same.
pub fn unescape_identifier(identifier: &str) -> Result<std::borrow::Cow<'_, str>, KeyError> {
    if identifier.contains('.') {
        return Err(KeyError::Escape {
            identifier: identifier.to_owned(),
            reason: "it contains `.`, which escaping replaces",
        });
    }
    if !identifier.contains(ESCAPE) {
        return Ok(identifier.into());
    }
    let mut unescaped = String::with_capacity(identifier.len());
    let mut rest = identifier;
    while let Some(at) = rest.find(ESCAPE) {
        unescaped.push_str(&rest[..at]);
        let sequence = rest.get(at..at + 3).unwrap_or(&rest[at..]);
        unescaped.push(match sequence {
            ESCAPED_DOT => '.',
            ESCAPED_ESCAPE => ESCAPE,
            _ => {
                return Err(KeyError::Escape {
                    identifier: identifier.to_owned(),
                    reason: "a `%` is followed by neither `2E` nor `25`",
                })
            }
        });
        rest = &rest[at + sequence.len()..];
    }
    unescaped.push_str(rest);
    Ok(unescaped.into())
}

/// The escape character of [`escape_identifier`], and the sequences it writes.
const ESCAPE: char = '%';
const ESCAPED_DOT: &str = "%2E";
const ESCAPED_ESCAPE: &str = "%25";

/// A fresh random identifier: 12 URL-safe base64 characters encoding 9 random bytes.
pub fn rand_identifier() -> String {
    let mut bytes = [0u8; 9];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests;
