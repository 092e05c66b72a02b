//! Safetensors reader and writer: a hand-written, fully validating parser of the file format and
//! the `WeightSource` over it (f32/f16/bf16/f64 → f32, name checks, unused-tensor tracking).

use super::{WeightError, WeightRequest, WeightSource};
use crate::graph::Tensor;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// Element type of a stored tensor (the safetensors `dtype` string).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dtype {
    Bool,
    U8,
    I8,
    F8E5M2,
    F8E4M3,
    F8E8M0,
    I16,
    U16,
    F16,
    BF16,
    I32,
    U32,
    F32,
    F64,
    I64,
    U64,
}

impl Dtype {
    const ALL: [Dtype; 16] = [
        Dtype::Bool,
        Dtype::U8,
        Dtype::I8,
        Dtype::F8E5M2,
        Dtype::F8E4M3,
        Dtype::F8E8M0,
        Dtype::I16,
        Dtype::U16,
        Dtype::F16,
        Dtype::BF16,
        Dtype::I32,
        Dtype::U32,
        Dtype::F32,
        Dtype::F64,
        Dtype::I64,
        Dtype::U64,
    ];

    /// The name used in the header (`"F32"`, `"BF16"`, `"BOOL"`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Dtype::Bool => "BOOL",
            Dtype::U8 => "U8",
            Dtype::I8 => "I8",
            Dtype::F8E5M2 => "F8_E5M2",
            Dtype::F8E4M3 => "F8_E4M3",
            Dtype::F8E8M0 => "F8_E8M0",
            Dtype::I16 => "I16",
            Dtype::U16 => "U16",
            Dtype::F16 => "F16",
            Dtype::BF16 => "BF16",
            Dtype::I32 => "I32",
            Dtype::U32 => "U32",
            Dtype::F32 => "F32",
            Dtype::F64 => "F64",
            Dtype::I64 => "I64",
            Dtype::U64 => "U64",
        }
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Dtype::Bool | Dtype::U8 | Dtype::I8 | Dtype::F8E5M2 | Dtype::F8E4M3 | Dtype::F8E8M0 => {
                1
            }
            Dtype::I16 | Dtype::U16 | Dtype::F16 | Dtype::BF16 => 2,
            Dtype::I32 | Dtype::U32 | Dtype::F32 => 4,
            Dtype::F64 | Dtype::I64 | Dtype::U64 => 8,
        }
    }

    /// Parses a header dtype string (exact, upper case as written by the Python library).
    pub fn from_name(s: &str) -> Option<Dtype> {
        Dtype::ALL.iter().copied().find(|d| d.name() == s)
    }
}

impl std::fmt::Display for Dtype {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Exact IEEE 754 binary16 → binary32 conversion (subnormals, infinities and NaN payloads kept).
pub fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from((h >> 10) & 0x1f);
    let man = u32::from(h & 0x3ff);
    let bits = match exp {
        0 => {
            // Zero or subnormal: man · 2^-24, exact in f32 (man < 2^10, power-of-two scale).
            let magnitude = man as f32 * (1.0 / 16_777_216.0);
            magnitude.to_bits() | sign
        }
        0x1f => sign | 0x7f80_0000 | (man << 13),
        _ => sign | ((exp + (127 - 15)) << 23) | (man << 13),
    };
    f32::from_bits(bits)
}

/// Exact bfloat16 → binary32 conversion (bf16 is the upper half of an f32).
pub fn bf16_to_f32(b: u16) -> f32 {
    f32::from_bits(u32::from(b) << 16)
}

/// One tensor of the header, validated: `begin..end` is an absolute byte range of the file.
#[derive(Clone, Debug)]
struct Entry {
    dtype: Dtype,
    shape: Vec<usize>,
    begin: usize,
    end: usize,
    used: bool,
}

/// A parsed, validated safetensors file held in memory.
#[derive(Debug)]
pub struct SafeTensorsFile {
    bytes: Vec<u8>,
    tensors: BTreeMap<String, Entry>,
    metadata: BTreeMap<String, String>,
}

fn shape_str(shape: &[usize]) -> String {
    let parts: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    format!("[{}]", parts.join(", "))
}

fn as_usize(v: &Value) -> Option<usize> {
    v.as_u64().and_then(|n| usize::try_from(n).ok())
}

fn parse_entry(name: &str, v: &Value, data_len: usize, data_start: usize) -> Result<Entry, String> {
    let obj = v
        .as_object()
        .ok_or_else(|| format!("tensor `{name}`: header entry is not a JSON object"))?;
    let field = |f: &str| {
        obj.get(f)
            .ok_or_else(|| format!("tensor `{name}`: missing field `{f}`"))
    };
    let dtype_v = field("dtype")?;
    let shape_v = field("shape")?;
    let offs_v = field("data_offsets")?;

    let dtype_s = dtype_v
        .as_str()
        .ok_or_else(|| format!("tensor `{name}`: `dtype` is not a string (found {dtype_v})"))?;
    let dtype = Dtype::from_name(dtype_s)
        .ok_or_else(|| format!("tensor `{name}`: unknown dtype `{dtype_s}`"))?;

    let shape_a = shape_v
        .as_array()
        .ok_or_else(|| format!("tensor `{name}`: `shape` is not an array (found {shape_v})"))?;
    let mut shape = Vec::with_capacity(shape_a.len());
    for d in shape_a {
        let d = as_usize(d).ok_or_else(|| {
            format!("tensor `{name}`: `shape` must hold non-negative integers (found {d})")
        })?;
        shape.push(d);
    }

    let offs = offs_v.as_array().ok_or_else(|| {
        format!("tensor `{name}`: `data_offsets` is not an array (found {offs_v})")
    })?;
    let (begin, end) = match offs.as_slice() {
        [b, e] => match (as_usize(b), as_usize(e)) {
            (Some(b), Some(e)) => (b, e),
            _ => {
                return Err(format!(
                    "tensor `{name}`: `data_offsets` must be two non-negative integers (found {offs_v})"
                ))
            }
        },
        _ => {
            return Err(format!(
                "tensor `{name}`: `data_offsets` must have exactly two entries (found {offs_v})"
            ))
        }
    };
    if begin > end {
        return Err(format!(
            "tensor `{name}`: data_offsets [{begin}, {end}] are reversed"
        ));
    }
    if end > data_len {
        return Err(format!(
            "tensor `{name}`: data_offsets [{begin}, {end}] go past the end of the data section \
             ({data_len} bytes)"
        ));
    }
    let count = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| {
            format!(
                "tensor `{name}`: shape {} is too large (element count overflows)",
                shape_str(&shape)
            )
        })?;
    let needed = count.checked_mul(dtype.size()).ok_or_else(|| {
        format!(
            "tensor `{name}`: shape {} is too large (byte size overflows)",
            shape_str(&shape)
        )
    })?;
    if end - begin != needed {
        return Err(format!(
            "tensor `{name}`: data_offsets [{begin}, {end}] span {} bytes but shape {} of {dtype} \
             needs {needed} bytes",
            end - begin,
            shape_str(&shape)
        ));
    }
    // `end <= data_len` and `data_start + data_len == bytes.len()`, so these cannot overflow.
    Ok(Entry {
        dtype,
        shape,
        begin: data_start + begin,
        end: data_start + end,
        used: false,
    })
}

impl SafeTensorsFile {
    /// Reads and parses a file; errors start with the path.
    pub fn open(path: &Path) -> Result<Self, String> {
        let bytes =
            std::fs::read(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
        Self::parse(bytes).map_err(|e| format!("`{}`: {e}", path.display()))
    }

    /// Parses the bytes of a whole safetensors file, validating the header against the data.
    pub fn parse(bytes: Vec<u8>) -> Result<Self, String> {
        let total = bytes.len();
        let len_bytes: [u8; 8] = match bytes.get(..8).map(<[u8; 8]>::try_from) {
            Some(Ok(b)) => b,
            _ => {
                return Err(format!(
                    "file too short: {total} bytes, but a safetensors file starts with an 8-byte \
                     header length"
                ))
            }
        };
        let n = u64::from_le_bytes(len_bytes);
        let rest = total - 8;
        let header_len = match usize::try_from(n) {
            Ok(h) if h <= rest => h,
            _ => {
                return Err(format!(
                    "truncated: header says {n} bytes but the file has {rest} bytes after the \
                     8-byte length"
                ))
            }
        };
        let data_start = 8 + header_len;
        let header_bytes = bytes.get(8..data_start).unwrap_or_default();
        let header = std::str::from_utf8(header_bytes).map_err(|e| {
            format!(
                "header is not valid UTF-8 (at header byte {})",
                e.valid_up_to()
            )
        })?;
        let json: Value =
            serde_json::from_str(header).map_err(|e| format!("header is not valid JSON: {e}"))?;
        let obj = json
            .as_object()
            .ok_or_else(|| "header is not a JSON object of tensors".to_string())?;
        let data_len = total - data_start;

        let mut tensors = BTreeMap::new();
        let mut metadata = BTreeMap::new();
        for (name, v) in obj {
            if name == "__metadata__" {
                let m = v
                    .as_object()
                    .ok_or_else(|| "`__metadata__` is not a JSON object".to_string())?;
                for (k, val) in m {
                    let s = match val {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    metadata.insert(k.clone(), s);
                }
                continue;
            }
            let entry = parse_entry(name, v, data_len, data_start)?;
            tensors.insert(name.clone(), entry);
        }
        Ok(SafeTensorsFile {
            bytes,
            tensors,
            metadata,
        })
    }

    /// All tensor names, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.tensors.keys().map(String::as_str).collect()
    }

    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// Dtype of a tensor.
    pub fn dtype(&self, name: &str) -> Option<Dtype> {
        self.tensors.get(name).map(|e| e.dtype)
    }

    /// Shape of a tensor as stored.
    pub fn shape(&self, name: &str) -> Option<&[usize]> {
        self.tensors.get(name).map(|e| e.shape.as_slice())
    }

    /// Raw little-endian bytes of a tensor.
    pub fn raw(&self, name: &str) -> Option<&[u8]> {
        let e = self.tensors.get(name)?;
        self.bytes.get(e.begin..e.end)
    }

    /// The `__metadata__` map (non-string values are kept as their JSON text).
    pub fn metadata(&self) -> &BTreeMap<String, String> {
        &self.metadata
    }

    /// Up to three existing names that look like `name`: a dotted suffix/prefix relation
    /// (e.g. a `module.` prefix) first, then small edit distances.
    pub fn similar_names(&self, name: &str) -> Vec<String> {
        let limit = (name.chars().count() / 5).max(2);
        let mut scored: Vec<(usize, &str)> = Vec::new();
        for cand in self.tensors.keys() {
            let suffix = cand.ends_with(&format!(".{name}")) || name.ends_with(&format!(".{cand}"));
            if suffix {
                scored.push((0, cand));
                continue;
            }
            let d = edit_distance(name, cand);
            if d <= limit {
                scored.push((d, cand));
            }
        }
        scored.sort();
        scored
            .into_iter()
            .take(3)
            .map(|(_, s)| s.to_string())
            .collect()
    }

    /// Converts a tensor to f32 without a shape check (no NaN/Inf check either).
    fn convert(&self, e: &Entry) -> Result<Vec<f32>, WeightError> {
        // Ranges are validated by `parse`; an empty fallback can then not happen.
        let raw = self.bytes.get(e.begin..e.end).unwrap_or_default();
        let data = match e.dtype {
            Dtype::F32 => raw
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            Dtype::F16 => raw
                .chunks_exact(2)
                .map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]])))
                .collect(),
            Dtype::BF16 => raw
                .chunks_exact(2)
                .map(|c| bf16_to_f32(u16::from_le_bytes([c[0], c[1]])))
                .collect(),
            Dtype::F64 => raw
                .chunks_exact(8)
                .map(|c| {
                    f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32
                })
                .collect(),
            other => {
                return Err(WeightError::WrongDtype {
                    found: other.name().to_string(),
                })
            }
        };
        Ok(data)
    }
}

/// Levenshtein distance over chars.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

impl WeightSource for SafeTensorsFile {
    /// Any fetch of an existing name marks it used, even when it fails (the failure is reported
    /// on its own; the tensor is not "unused").
    fn fetch(&mut self, req: &WeightRequest<'_>) -> Result<Tensor, WeightError> {
        let Some(e) = self.tensors.get_mut(req.name) else {
            return Err(WeightError::Missing {
                similar: self.similar_names(req.name),
            });
        };
        e.used = true;
        let e = e.clone();
        if e.shape != req.shape {
            return Err(WeightError::WrongShape { found: e.shape });
        }
        let data = self.convert(&e)?;
        if let Some(index) = data.iter().position(|v| !v.is_finite()) {
            return Err(WeightError::NonFinite { index });
        }
        Ok(Tensor {
            shape: e.shape,
            data,
        })
    }

    fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    fn unused(&self) -> Vec<String> {
        // BTreeMap iteration is sorted.
        self.tensors
            .iter()
            .filter(|(n, e)| {
                !e.used && *n != "num_batches_tracked" && !n.ends_with(".num_batches_tracked")
            })
            .map(|(n, _)| n.clone())
            .collect()
    }
}

/// Serializes tensors (any dtype, raw little-endian bytes) deterministically: keys sorted, data in
/// key order, header padded with spaces to a multiple of 8. Nothing is checked (byte lengths or
/// duplicate names), so tests can craft inconsistent files on purpose.
pub fn serialize(tensors: &[(String, Dtype, Vec<usize>, Vec<u8>)]) -> Vec<u8> {
    let mut order: Vec<&(String, Dtype, Vec<usize>, Vec<u8>)> = tensors.iter().collect();
    order.sort_by(|a, b| a.0.cmp(&b.0));
    let mut header = String::from("{");
    let mut offset = 0usize;
    for (i, (name, dtype, shape, data)) in order.iter().enumerate() {
        if i > 0 {
            header.push(',');
        }
        let key = Value::String(name.clone()).to_string();
        let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
        let end = offset + data.len();
        let _ = write!(
            header,
            "{key}:{{\"dtype\":\"{dtype}\",\"shape\":[{}],\"data_offsets\":[{offset},{end}]}}",
            dims.join(",")
        );
        offset = end;
    }
    header.push('}');
    while header.len() % 8 != 0 {
        header.push(' ');
    }
    let mut out = Vec::with_capacity(8 + header.len() + offset);
    out.extend_from_slice(&(header.len() as u64).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for (_, _, _, data) in order {
        out.extend_from_slice(data);
    }
    out
}

/// Writes f32 tensors to `path` (see `serialize`). Fails with `InvalidInput` when a tensor's data
/// length differs from the product of its shape.
pub fn write(path: &Path, tensors: &[(&str, &[usize], &[f32])]) -> std::io::Result<()> {
    let mut owned = Vec::with_capacity(tensors.len());
    for (name, shape, data) in tensors {
        let count = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        if count != Some(data.len()) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "tensor `{name}`: {} values for shape {}",
                    data.len(),
                    shape_str(shape)
                ),
            ));
        }
        let bytes: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        owned.push((name.to_string(), Dtype::F32, shape.to_vec(), bytes));
    }
    std::fs::write(path, serialize(&owned))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::weights::ParamKind;

    fn req<'a>(name: &'a str, shape: &'a [usize]) -> WeightRequest<'a> {
        WeightRequest {
            name,
            shape,
            kind: ParamKind::Weight,
        }
    }

    fn f32_bytes(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    /// A file with a hand-written header and `data_len` zero bytes of data.
    fn raw_file(header: &str, data_len: usize) -> Vec<u8> {
        let mut out = (header.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(header.as_bytes());
        out.extend(std::iter::repeat_n(0u8, data_len));
        out
    }

    fn parse_err(bytes: Vec<u8>) -> String {
        match SafeTensorsFile::parse(bytes) {
            Ok(_) => panic!("expected a parse error"),
            Err(e) => e,
        }
    }

    #[test]
    fn round_trip_through_a_file() {
        let dir = std::env::temp_dir().join(format!("neulens-st-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("rt.safetensors");
        let w = [1.0f32, -2.0, 3.5, 4.25, 0.0, -0.125];
        let b = [0.5f32, -0.5];
        write(
            &path,
            &[("conv.weight", &[2, 3], &w), ("conv.bias", &[2], &b)],
        )
        .unwrap();
        let mut f = SafeTensorsFile::open(&path).unwrap();
        assert_eq!(f.names(), vec!["conv.bias", "conv.weight"]);
        assert_eq!(f.dtype("conv.weight"), Some(Dtype::F32));
        let t = f.fetch(&req("conv.weight", &[2, 3])).unwrap();
        assert_eq!(t.shape, vec![2, 3]);
        assert_eq!(t.data, w.to_vec());
        assert_eq!(f.unused(), vec!["conv.bias".to_string()]);
        let t = f.fetch(&req("conv.bias", &[2])).unwrap();
        assert_eq!(t.data, b.to_vec());
        assert!(f.unused().is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn serialize_is_deterministic_sorted_and_padded() {
        let a = vec![
            ("b".to_string(), Dtype::F32, vec![1], f32_bytes(&[2.0])),
            ("a".to_string(), Dtype::F32, vec![1], f32_bytes(&[1.0])),
        ];
        let mut rev = a.clone();
        rev.reverse();
        let bytes = serialize(&a);
        assert_eq!(bytes, serialize(&rev));
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        assert_eq!(n % 8, 0);
        let header = std::str::from_utf8(&bytes[8..8 + n]).unwrap();
        assert!(header.starts_with(
            r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#
        ));
        assert_eq!(&bytes[8 + n..], &f32_bytes(&[1.0, 2.0])[..]);
    }

    #[test]
    fn write_rejects_inconsistent_lengths() {
        let path = std::env::temp_dir().join("neulens-st-never-written.safetensors");
        let e = write(&path, &[("x", &[2, 2], &[1.0, 2.0, 3.0])]).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("`x`"), "{e}");
    }

    #[test]
    fn open_missing_file_names_the_path() {
        let e = SafeTensorsFile::open(Path::new("/nonexistent/w.safetensors")).unwrap_err();
        assert!(e.contains("/nonexistent/w.safetensors"), "{e}");
    }

    #[test]
    fn f16_known_values() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc100), -2.5);
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x03ff), 1023.0 * 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x0400), 2f32.powi(-14));
        assert_eq!(f16_to_f32(0x8001), -(2f32.powi(-24)));
        assert_eq!(f16_to_f32(0x0000).to_bits(), 0);
        assert_eq!(f16_to_f32(0x8000).to_bits(), 0x8000_0000);
        assert_eq!(f16_to_f32(0x7c00), f32::INFINITY);
        assert_eq!(f16_to_f32(0xfc00), f32::NEG_INFINITY);
        assert!(f16_to_f32(0x7e00).is_nan());
        assert!(f16_to_f32(0x7c01).is_nan());
        assert_eq!(f16_to_f32(0x3555), 0.333_251_95);
    }

    #[test]
    fn f16_exhaustive_against_reference_formula() {
        for h in 0..=u16::MAX {
            let got = f16_to_f32(h);
            let sign = if h & 0x8000 != 0 { -1.0f64 } else { 1.0 };
            let exp = i32::from((h >> 10) & 0x1f);
            let man = f64::from(h & 0x3ff);
            let want = match exp {
                0 => sign * man * 2f64.powi(-24),
                31 if man == 0.0 => sign * f64::INFINITY,
                31 => f64::NAN,
                _ => sign * (1.0 + man / 1024.0) * 2f64.powi(exp - 15),
            };
            if want.is_nan() {
                assert!(got.is_nan(), "{h:#06x}");
            } else {
                assert_eq!(f64::from(got), want, "{h:#06x}");
                assert_eq!(got.is_sign_negative(), h & 0x8000 != 0, "{h:#06x}");
            }
        }
    }

    #[test]
    fn bf16_known_values() {
        assert_eq!(bf16_to_f32(0x3f80), 1.0);
        assert_eq!(bf16_to_f32(0xc020), -2.5);
        assert_eq!(bf16_to_f32(0x477f), 65280.0);
        assert_eq!(bf16_to_f32(0x0001), f32::from_bits(0x0001_0000)); // smallest subnormal
        assert_eq!(bf16_to_f32(0x0001), 2f32.powi(-133));
        assert_eq!(bf16_to_f32(0x7f80), f32::INFINITY);
        assert_eq!(bf16_to_f32(0xff80), f32::NEG_INFINITY);
        assert!(bf16_to_f32(0x7fc0).is_nan());
    }

    #[test]
    fn fetch_converts_f16_bf16_f64() {
        let f16: Vec<u8> = [0x3c00u16, 0xc100, 0x7bff, 0x0001]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let bf16: Vec<u8> = [0x3f80u16, 0xc020]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let f64b: Vec<u8> = [0.1f64, -3.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let bytes = serialize(&[
            ("h".into(), Dtype::F16, vec![4], f16),
            ("b".into(), Dtype::BF16, vec![2], bf16),
            ("d".into(), Dtype::F64, vec![2], f64b),
        ]);
        let mut f = SafeTensorsFile::parse(bytes).unwrap();
        assert_eq!(
            f.fetch(&req("h", &[4])).unwrap().data,
            vec![1.0, -2.5, 65504.0, 2f32.powi(-24)]
        );
        assert_eq!(f.fetch(&req("b", &[2])).unwrap().data, vec![1.0, -2.5]);
        assert_eq!(f.fetch(&req("d", &[2])).unwrap().data, vec![0.1f32, -3.0]);
    }

    #[test]
    fn fetch_errors() {
        let bytes = serialize(&[
            (
                "layer1.0.conv1.weight".into(),
                Dtype::F32,
                vec![2, 1],
                f32_bytes(&[1.0, 2.0]),
            ),
            (
                "layer1.0.conv2.weight".into(),
                Dtype::F32,
                vec![1],
                f32_bytes(&[1.0]),
            ),
            (
                "bn.num_batches_tracked".into(),
                Dtype::I64,
                vec![],
                0i64.to_le_bytes().to_vec(),
            ),
            ("scalar".into(), Dtype::F32, vec![], f32_bytes(&[1.0])),
            (
                "nan".into(),
                Dtype::F32,
                vec![3],
                f32_bytes(&[1.0, 2.0, f32::NAN]),
            ),
            (
                "inf16".into(),
                Dtype::F16,
                vec![2],
                [0x3c00u16, 0x7c00]
                    .iter()
                    .flat_map(|v| v.to_le_bytes())
                    .collect(),
            ),
            (
                "big64".into(),
                Dtype::F64,
                vec![1],
                1e300f64.to_le_bytes().to_vec(),
            ),
            ("flags".into(), Dtype::Bool, vec![2], vec![0, 1]),
            (
                "zz.unrelated.name".into(),
                Dtype::F32,
                vec![1],
                f32_bytes(&[0.0]),
            ),
        ]);
        let mut f = SafeTensorsFile::parse(bytes).unwrap();
        assert_eq!(
            f.fetch(&req("layer1.0.conv1.weight", &[1, 2])),
            Err(WeightError::WrongShape { found: vec![2, 1] })
        );
        // 0-dim vs [1] is a different shape.
        assert_eq!(
            f.fetch(&req("scalar", &[1])),
            Err(WeightError::WrongShape { found: vec![] })
        );
        assert_eq!(
            f.fetch(&req("nan", &[3])),
            Err(WeightError::NonFinite { index: 2 })
        );
        assert_eq!(
            f.fetch(&req("inf16", &[2])),
            Err(WeightError::NonFinite { index: 1 })
        );
        assert_eq!(
            f.fetch(&req("big64", &[1])),
            Err(WeightError::NonFinite { index: 0 })
        );
        assert_eq!(
            f.fetch(&req("flags", &[2])),
            Err(WeightError::WrongDtype {
                found: "BOOL".into()
            })
        );
        assert_eq!(
            f.fetch(&req("bn.num_batches_tracked", &[])),
            Err(WeightError::WrongDtype {
                found: "I64".into()
            })
        );
        match f.fetch(&req("layer1.0.conv3.weight", &[1])) {
            Err(WeightError::Missing { similar }) => assert_eq!(
                similar,
                vec![
                    "layer1.0.conv1.weight".to_string(),
                    "layer1.0.conv2.weight".to_string()
                ]
            ),
            other => panic!("{other:?}"),
        }
        // A `module.` prefix (DataParallel) is found through the suffix rule.
        match f.fetch(&req("module.layer1.0.conv1.weight", &[2, 1])) {
            Err(WeightError::Missing { similar }) => {
                assert_eq!(
                    similar.first().map(String::as_str),
                    Some("layer1.0.conv1.weight")
                )
            }
            other => panic!("{other:?}"),
        }
        match f.fetch(&req("completely_different", &[1])) {
            Err(WeightError::Missing { similar }) => assert!(similar.is_empty(), "{similar:?}"),
            other => panic!("{other:?}"),
        }
        assert!(f.contains("scalar"));
        assert!(!f.contains("scalr"));
        assert_eq!(
            f.unused(),
            vec![
                "layer1.0.conv2.weight".to_string(),
                "zz.unrelated.name".to_string()
            ]
        );
    }

    #[test]
    fn too_short() {
        let e = parse_err(vec![1, 2, 3]);
        assert!(e.contains("too short") && e.contains("3 bytes"), "{e}");
        assert!(parse_err(Vec::new()).contains("too short"));
    }

    #[test]
    fn truncated_header() {
        let mut bytes = serialize(&[("x".into(), Dtype::F32, vec![1], f32_bytes(&[1.0]))]);
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap());
        bytes.truncate(20);
        let e = parse_err(bytes);
        let want = format!("truncated: header says {n} bytes but the file has 12 bytes");
        assert!(e.starts_with(&want), "{e}");
        let mut huge = u64::MAX.to_le_bytes().to_vec();
        huge.extend_from_slice(b"{}");
        let e = parse_err(huge);
        assert!(
            e.contains(&format!("header says {} bytes", u64::MAX)),
            "{e}"
        );
    }

    #[test]
    fn bad_header_text() {
        let e = parse_err(raw_file("{\"x\": ", 0));
        assert!(e.starts_with("header is not valid JSON"), "{e}");
        let mut b = raw_file("{}  ", 0);
        b[9] = 0xff;
        assert!(parse_err(b).contains("not valid UTF-8"));
        assert!(parse_err(raw_file("[1, 2]", 0)).contains("not a JSON object"));
        assert!(parse_err(raw_file(r#"{"__metadata__": 3}"#, 0)).contains("__metadata__"));
    }

    #[test]
    fn bad_entries_name_the_tensor() {
        let cases: [(&str, usize, &str); 9] = [
            (
                r#"{"w": {"shape": [1], "data_offsets": [0, 4]}}"#,
                4,
                "tensor `w`: missing field `dtype`",
            ),
            (
                r#"{"w": {"dtype": "F32", "data_offsets": [0, 4]}}"#,
                4,
                "tensor `w`: missing field `shape`",
            ),
            (
                r#"{"w": {"dtype": "F32", "shape": [1]}}"#,
                4,
                "tensor `w`: missing field `data_offsets`",
            ),
            (
                r#"{"w": {"dtype": "Q4", "shape": [1], "data_offsets": [0, 4]}}"#,
                4,
                "tensor `w`: unknown dtype `Q4`",
            ),
            (
                r#"{"w": {"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}}"#,
                4,
                "tensor `w`: data_offsets [4, 0] are reversed",
            ),
            (
                r#"{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 8]}}"#,
                4,
                "tensor `w`: data_offsets [0, 8] go past the end",
            ),
            (
                r#"{"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}"#,
                4,
                "tensor `w`: data_offsets [0, 4] span 4 bytes but shape [2] of F32 needs 8 bytes",
            ),
            (
                r#"{"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}"#,
                4,
                "tensor `w`: `shape` must hold non-negative integers",
            ),
            (
                r#"{"w": {"dtype": "F32", "shape": [4294967296, 4294967296, 4294967296], "data_offsets": [0, 4]}}"#,
                4,
                "tensor `w`: shape [4294967296, 4294967296, 4294967296] is too large",
            ),
        ];
        for (header, data, want) in cases {
            let e = parse_err(raw_file(header, data));
            assert!(
                e.starts_with(want),
                "header {header}\n got: {e}\nwant: {want}"
            );
        }
    }

    #[test]
    fn metadata_and_zero_sized_tensors() {
        let header = r#"{"__metadata__": {"format": "pt", "n": 3}, "e": {"dtype": "F32", "shape": [0, 3], "data_offsets": [0, 0]}}"#;
        let mut f = SafeTensorsFile::parse(raw_file(header, 0)).unwrap();
        assert_eq!(f.metadata().get("format").map(String::as_str), Some("pt"));
        assert_eq!(f.metadata().get("n").map(String::as_str), Some("3"));
        assert_eq!(f.len(), 1);
        let t = f.fetch(&req("e", &[0, 3])).unwrap();
        assert!(t.data.is_empty());
    }
}
