// The known-answer vectors of PROTOCOL.md, shared by the tests that check them (each
// includes this file where `BTreeMap` and `Vec` are in scope).
//
// Every line `name = hex` inside a fenced ```` ```vectors ```` block. Strict on purpose: a
// malformed line or a duplicate name fails the test rather than being skipped.

/// Parse the vectors blocks of `markdown`.
pub(crate) fn parse(markdown: &'static str) -> BTreeMap<&'static str, Vec<u8>> {
    let mut vectors = BTreeMap::new();
    // Inside a fenced block: `Some(true)` if it is a vectors block.
    let mut fence: Option<bool> = None;
    for (number, line) in markdown.lines().enumerate() {
        let at = number + 1;
        let line = line.trim();
        if let Some(info) = line.strip_prefix("```") {
            fence = match fence {
                None => Some(info.trim() == "vectors"),
                Some(_) => None,
            };
            continue;
        }
        if fence != Some(true) || line.is_empty() {
            continue;
        }
        let (name, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("PROTOCOL.md:{at}: not `name = hex`"));
        let (name, value) = (name.trim(), value.trim());
        assert!(
            !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
            "PROTOCOL.md:{at}: bad vector name {name:?}"
        );
        assert!(
            !value.bytes().any(|b| b.is_ascii_uppercase()),
            "PROTOCOL.md:{at}: hex must be lower case"
        );
        let bytes = hex::decode(value).unwrap_or_else(|e| panic!("PROTOCOL.md:{at}: {name}: {e}"));
        assert!(
            vectors.insert(name, bytes).is_none(),
            "PROTOCOL.md:{at}: duplicate vector {name}"
        );
    }
    assert_eq!(fence, None, "PROTOCOL.md: unterminated code block");
    vectors
}

/// The vectors of PROTOCOL.md, by name.
pub(crate) struct Vectors(pub(crate) BTreeMap<&'static str, Vec<u8>>);

#[allow(dead_code)] // each test file uses some of these
impl Vectors {
    /// Parse `markdown` (PROTOCOL.md).
    pub(crate) fn load(markdown: &'static str) -> Self {
        Vectors(parse(markdown))
    }

    /// The vector `name`; panics if PROTOCOL.md has none.
    pub(crate) fn get(&self, name: &str) -> &[u8] {
        self.0
            .get(name)
            .unwrap_or_else(|| panic!("PROTOCOL.md has no vector {name}"))
    }

    /// The vector `name`, which must be `N` bytes.
    pub(crate) fn array<const N: usize>(&self, name: &str) -> [u8; N] {
        let bytes = self.get(name);
        bytes
            .try_into()
            .unwrap_or_else(|_| panic!("vector {name} is {} bytes, not {N}", bytes.len()))
    }

    /// The vector `name` as a big-endian `u32`.
    pub(crate) fn u32(&self, name: &str) -> u32 {
        u32::from_be_bytes(self.array(name))
    }

    /// Check a computed value against the vector `name`, showing both in hex on failure.
    pub(crate) fn check(&self, name: &str, got: &[u8]) {
        assert_eq!(hex::encode(got), hex::encode(self.get(name)), "{name}");
    }
}
