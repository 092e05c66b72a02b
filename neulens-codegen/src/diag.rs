//! Diagnostics: every user-facing error of the pipeline, with the spec file, line and column, the
//! layer, and what was expected versus found. Stages push into one `Diagnostics` so that all errors
//! of a spec are reported together.

use std::fmt;

/// A position in a spec source (1-based line and column; byte offset and length when known).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Loc {
    pub line: u64,
    pub column: u64,
    /// Byte offset of the start in the spec text (for macro spans of inline specs).
    pub offset: usize,
    /// Length in bytes of the located token (0 when unknown).
    pub len: usize,
}

impl Loc {
    pub const UNKNOWN: Loc = Loc {
        line: 0,
        column: 0,
        offset: 0,
        len: 0,
    };

    pub fn from_saphyr(l: &serde_saphyr::Location) -> Loc {
        let span = l.span();
        let offset = span.byte_offset().unwrap_or(span.offset()) as usize;
        let len = span.byte_len().unwrap_or(span.len()) as usize;
        Loc {
            line: l.line(),
            column: l.column(),
            offset,
            len,
        }
    }
}

/// One error (or warning) about a spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// The spec file as the user named it (or `<inline spec>` for a spec given in the macro).
    pub file: String,
    pub loc: Loc,
    /// The layer the problem belongs to, if any.
    pub layer: Option<String>,
    pub message: String,
    pub expected: Option<String>,
    pub found: Option<String>,
}

impl Diagnostic {
    pub fn new(file: &str, loc: Loc, message: impl Into<String>) -> Self {
        Diagnostic {
            file: file.to_string(),
            loc,
            layer: None,
            message: message.into(),
            expected: None,
            found: None,
        }
    }
    pub fn layer(mut self, layer: impl Into<String>) -> Self {
        self.layer = Some(layer.into());
        self
    }
    pub fn expected(mut self, e: impl Into<String>) -> Self {
        self.expected = Some(e.into());
        self
    }
    pub fn found(mut self, f: impl Into<String>) -> Self {
        self.found = Some(f.into());
        self
    }
}

impl Diagnostic {
    /// The message without the `error` severity word, for front ends that add their own
    /// (`compile_error!` prints `error:` already): ``file:line:col: layer `x`: message (...)``.
    pub fn without_severity(&self) -> String {
        self.to_string().replacen(": error", "", 1)
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.loc.line > 0 {
            write!(
                f,
                "{}:{}:{}: error",
                self.file, self.loc.line, self.loc.column
            )?;
        } else {
            write!(f, "{}: error", self.file)?;
        }
        if let Some(l) = &self.layer {
            write!(f, ": layer `{l}`")?;
        }
        write!(f, ": {}", self.message)?;
        match (&self.expected, &self.found) {
            (Some(e), Some(x)) => write!(f, " (expected {e}, found {x})"),
            (Some(e), None) => write!(f, " (expected {e})"),
            (None, Some(x)) => write!(f, " (found {x})"),
            (None, None) => Ok(()),
        }
    }
}

/// All diagnostics of one compilation. Also the error type of the whole pipeline.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diagnostics {
    pub items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn push(&mut self, d: Diagnostic) {
        self.items.push(d);
    }
    /// Moves every diagnostic of `other` into `self`.
    pub fn extend(&mut self, other: Diagnostics) {
        for d in other.iter() {
            self.push(d.clone());
        }
    }
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
    pub fn len(&self) -> usize {
        self.items.len()
    }
    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter()
    }
    /// `Ok(value)` when no error was pushed, else all errors.
    pub fn finish<T>(self, value: T) -> Result<T, Diagnostics> {
        if self.items.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }
    pub fn single(d: Diagnostic) -> Self {
        Diagnostics { items: vec![d] }
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.items.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

impl From<Diagnostic> for Diagnostics {
    fn from(d: Diagnostic) -> Self {
        Diagnostics::single(d)
    }
}
