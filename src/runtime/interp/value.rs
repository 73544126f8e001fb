//! Userspace ktap values: nil, booleans, integers, byte strings, tables and
//! functions, with Lua's equality, truthiness and numeric-string rules.
//! Shared by the interpreter and the output formatter; never does IO.

use std::cell::RefCell;
use std::fmt;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::rc::Rc;

use indexmap::IndexMap;

use super::builtins::Builtin;
use super::code::Proto;

/// A ktap value. Cloning is cheap: strings, tables and functions are shared.
///
/// Two machine words: a word-sized tag keeps every payload at offset 8, so
/// values move as whole words (a byte tag with a `bool` beside it made the
/// compiler copy values piecemeal, stalling store forwarding in the VM).
#[derive(Clone, Default)]
#[repr(u64)]
pub enum Value {
    #[default]
    Nil,
    Bool(bool),
    /// 64-bit signed integer; arithmetic wraps.
    Int(i64),
    Str(KStr),
    Table(Rc<RefCell<Table>>),
    Func(Rc<Function>),
    /// A kernel aggregate's entry that is not a plain number (an `avg`,
    /// `stats`, `hist` or `lhist`) as read from its table, or any global
    /// aggregate's (`lat = hist(d)`). `delete(lat)` empties it in place.
    Agg(Rc<RefCell<crate::ir::agg::Reading>>),
}

impl Value {
    /// A string value holding a copy of `bytes`.
    pub fn str(bytes: impl AsRef<[u8]>) -> Value {
        Value::Str(KStr::new(bytes.as_ref()))
    }

    /// An aggregate's reading as a value of its own.
    pub fn agg(r: crate::ir::agg::Reading) -> Value {
        Value::Agg(Rc::new(RefCell::new(r)))
    }

    /// A new, empty table value.
    pub fn new_table() -> Value {
        Value::Table(Rc::new(RefCell::new(Table::new())))
    }

    /// Only nil and false are false.
    #[inline]
    pub fn truthy(&self) -> bool {
        !matches!(self, Value::Nil | Value::Bool(false))
    }

    pub fn is_nil(&self) -> bool {
        matches!(self, Value::Nil)
    }

    /// The Lua type name used in error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Nil => "nil",
            Value::Bool(_) => "boolean",
            Value::Int(_) => "number",
            Value::Str(_) => "string",
            Value::Table(_) => "table",
            Value::Func(_) => "function",
            Value::Agg(_) => "aggregate",
        }
    }

    /// The integer this value stands for in arithmetic: an integer, or a
    /// string holding a decimal or `0x` hex integer (Lua's coercion).
    pub fn to_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Str(s) => parse_int(s.as_bytes()),
            _ => None,
        }
    }

    /// The address shown by `print` for tables and functions.
    pub fn address(&self) -> Option<usize> {
        match self {
            Value::Table(t) => Some(Rc::as_ptr(t) as *const u8 as usize),
            Value::Func(f) => Some(Rc::as_ptr(f) as *const u8 as usize),
            _ => None,
        }
    }
}

/// Language equality (`==`): same type and same content for strings,
/// same object for tables and functions. Never an error.
impl PartialEq for Value {
    #[inline]
    fn eq(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Nil, Value::Nil) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Int(a), Value::Int(b)) => a == b,
            (Value::Str(a), Value::Str(b)) => a == b,
            (Value::Table(a), Value::Table(b)) => Rc::ptr_eq(a, b),
            (Value::Func(a), Value::Func(b)) => Rc::ptr_eq(a, b),
            (Value::Agg(a), Value::Agg(b)) => *a.borrow() == *b.borrow(),
            _ => false,
        }
    }
}

impl Eq for Value {}

impl Hash for Value {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        // One word per key, salted per type so that 1, true and a
        // pointer that happens to equal 1 land apart.
        let word = match self {
            Value::Nil => 0x6e69_6c00,
            Value::Bool(b) => 0x626f_6f6c_0000 | u64::from(*b),
            Value::Int(i) => *i as u64,
            Value::Str(s) => s.hash() ^ 0x7374_7200_0000_0000,
            Value::Table(t) => (Rc::as_ptr(t) as *const u8 as u64).rotate_left(17),
            Value::Func(f) => (Rc::as_ptr(f) as *const u8 as u64).rotate_left(29),
            // Equal by content: one word for all (they are rarely keys).
            Value::Agg(_) => 0x6167_6700,
        };
        state.write_u64(word);
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Nil => write!(f, "nil"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Str(s) => write!(f, "{:?}", String::from_utf8_lossy(s.as_bytes())),
            Value::Table(t) => write!(f, "table: {:p}", Rc::as_ptr(t)),
            Value::Func(x) => write!(f, "function: {:p}", Rc::as_ptr(x)),
            Value::Agg(r) => write!(f, "{:?}", r.borrow()),
        }
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Value {
        Value::Int(i)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::str(s)
    }
}

/// Parses a numeric string as Lua coerces it: optional surrounding blanks,
/// an optional sign, then decimal digits or `0x` hex digits. Decimal
/// overflow is refused; hex wraps to 64 bits like a literal.
pub fn parse_int(s: &[u8]) -> Option<i64> {
    let s = s.trim_ascii();
    let (neg, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() {
        return None;
    }
    let magnitude: u64 = if let Some(hex) = digits
        .strip_prefix(b"0x")
        .or_else(|| digits.strip_prefix(b"0X"))
    {
        if hex.is_empty() || hex.len() > 16 {
            return None;
        }
        let mut n: u64 = 0;
        for &c in hex {
            n = (n << 4) | u64::from((c as char).to_digit(16)?);
        }
        n
    } else {
        let mut n: u64 = 0;
        for &c in digits {
            if !c.is_ascii_digit() {
                return None;
            }
            n = n.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
        }
        if n > i64::MAX as u64 + u64::from(neg) {
            return None;
        }
        n
    };
    let v = magnitude as i64;
    Some(if neg { v.wrapping_neg() } else { v })
}

/// An immutable byte string; its hash is computed the first time it is
/// needed (as a table key) and kept.
#[derive(Clone)]
pub struct KStr(Rc<StrData>);

struct StrData {
    /// 0 until computed.
    hash: std::cell::Cell<u64>,
    bytes: Box<[u8]>,
}

impl KStr {
    pub fn new(bytes: &[u8]) -> KStr {
        KStr::from_boxed(bytes.into())
    }

    pub fn from_boxed(bytes: Box<[u8]>) -> KStr {
        KStr(Rc::new(StrData {
            hash: std::cell::Cell::new(0),
            bytes,
        }))
    }

    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        &self.0.bytes
    }

    pub fn len(&self) -> usize {
        self.0.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.bytes.is_empty()
    }

    #[inline]
    fn hash(&self) -> u64 {
        let h = self.0.hash.get();
        if h != 0 {
            return h;
        }
        let h = hash_bytes(&self.0.bytes).max(1);
        self.0.hash.set(h);
        h
    }
}

impl PartialEq for KStr {
    fn eq(&self, other: &KStr) -> bool {
        Rc::ptr_eq(&self.0, &other.0) || self.0.bytes == other.0.bytes
    }
}

impl Eq for KStr {}

impl From<Vec<u8>> for KStr {
    fn from(v: Vec<u8>) -> KStr {
        KStr::from_boxed(v.into_boxed_slice())
    }
}

impl From<&str> for KStr {
    fn from(s: &str) -> KStr {
        KStr::new(s.as_bytes())
    }
}

const FX_K: u64 = 0x517c_c1b7_2722_0a95;

fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut h: u64 = bytes.len() as u64;
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(FX_K);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut w = [0u8; 8];
        w[..rest.len()].copy_from_slice(rest);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(FX_K);
    }
    h
}

/// A fast, non-cryptographic hasher for table keys (each key hashes as one
/// word, see `Hash for Value`). Tables hold script data only, so hash
/// flooding is not a concern here.
#[derive(Default, Clone, Copy)]
pub struct KeyHasher(u64);

impl Hasher for KeyHasher {
    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(FX_K);
    }

    fn write(&mut self, bytes: &[u8]) {
        self.write_u64(hash_bytes(bytes));
    }

    #[inline]
    fn finish(&self) -> u64 {
        // Fold the well-mixed high bits down: the map indexes with the
        // low ones.
        self.0 ^ (self.0 >> 32)
    }
}

type Map = IndexMap<Value, Value, BuildHasherDefault<KeyHasher>>;

/// A ktap table: keys of any non-nil value, iterated in insertion order.
///
/// Removing a key leaves a nil tombstone in its slot, so a traversal by
/// position (`pairs`) survives removals made during it; tombstones are
/// swept when new keys are added and they outnumber the live entries.
#[derive(Default)]
pub struct Table {
    map: Map,
    live: usize,
}

impl Table {
    pub fn new() -> Table {
        Table::default()
    }

    /// A table with room for `n` entries.
    pub fn with_capacity(n: usize) -> Table {
        Table {
            map: Map::with_capacity_and_hasher(n, Default::default()),
            live: 0,
        }
    }

    /// The number of entries (keys with a non-nil value).
    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// The value at `key`, nil when absent.
    #[inline]
    pub fn get(&self, key: &Value) -> Value {
        match self.map.get(key) {
            Some(v) => v.clone(),
            None => Value::Nil,
        }
    }

    /// The value at `key` if present (tombstones read as nil).
    #[inline]
    pub fn get_ref(&self, key: &Value) -> Option<&Value> {
        self.map.get(key)
    }

    /// The value at the string key `key`, nil when absent.
    pub fn get_str(&self, key: &str) -> Value {
        self.get(&Value::str(key))
    }

    /// Sets `key` to `value`; a nil value removes the key. A nil key is
    /// ignored here (the interpreter reports it before calling).
    pub fn set(&mut self, key: Value, value: Value) {
        if key.is_nil() {
            return;
        }
        if value.is_nil() {
            self.remove(&key);
            return;
        }
        match self.map.get_full_mut(&key) {
            Some((_, _, slot)) => {
                if slot.is_nil() {
                    self.live += 1;
                }
                *slot = value;
            }
            None => {
                self.sweep();
                self.map.insert(key, value);
                self.live += 1;
            }
        }
    }

    /// The slot for `key`, created as nil (counted once it is made
    /// non-nil through `fill`). Used for `t[k] += v` with one lookup.
    #[inline]
    pub(crate) fn slot(&mut self, key: Value) -> &mut Value {
        let i = match self.map.get_index_of(&key) {
            Some(i) => i,
            None => {
                self.sweep();
                self.map.insert_full(key, Value::Nil).0
            }
        };
        &mut self.map[i]
    }

    /// Records that a slot returned by `slot` went from nil to non-nil.
    pub(crate) fn filled(&mut self) {
        self.live += 1;
    }

    /// Removes `key` (leaves a tombstone).
    pub fn remove(&mut self, key: &Value) {
        if let Some(slot) = self.map.get_mut(key) {
            if !slot.is_nil() {
                *slot = Value::Nil;
                self.live -= 1;
            }
        }
    }

    /// Removes every entry.
    pub fn clear(&mut self) {
        self.map.clear();
        self.live = 0;
    }

    /// The live entries, in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&Value, &Value)> {
        self.map.iter().filter(|(_, v)| !v.is_nil())
    }

    /// The first live entry at position `pos` or later, with its position.
    pub(crate) fn next_from(&self, pos: usize) -> Option<(usize, &Value, &Value)> {
        let mut i = pos;
        while let Some((k, v)) = self.map.get_index(i) {
            if !v.is_nil() {
                return Some((i, k, v));
            }
            i += 1;
        }
        None
    }

    fn sweep(&mut self) {
        let dead = self.map.len() - self.live;
        if dead > 8 && dead > self.live {
            self.map.retain(|_, v| !v.is_nil());
        }
    }
}

/// Dropping a table frees nested tables and closures with a work list, not
/// recursion: a script may build a linked list a million tables deep, and
/// a recursive drop of it would overflow the Rust stack.
impl Drop for Table {
    fn drop(&mut self) {
        if self.map.is_empty() {
            return;
        }
        let mut pending = Vec::new();
        drain_into(&mut self.map, &mut pending);
        free_all(pending);
    }
}

/// Closures free what they captured the same way (a chain of closures,
/// each capturing the previous one, is as deep as a linked list).
impl Drop for Closure {
    fn drop(&mut self) {
        if self.upvals.is_empty() {
            return;
        }
        let mut pending = Vec::new();
        take_upvals(self, &mut pending);
        free_all(pending);
    }
}

/// Frees `pending` and everything only it holds, iteratively: each table
/// or closure that nobody else holds is emptied onto the list, so it drops
/// with nothing left to recurse into.
fn free_all(mut pending: Vec<Value>) {
    while let Some(v) = pending.pop() {
        match v {
            Value::Table(rc) => {
                if let Ok(cell) = Rc::try_unwrap(rc) {
                    drain_into(&mut cell.into_inner().map, &mut pending);
                }
            }
            Value::Func(rc) => {
                if let Ok(Function::Closure(mut c)) = Rc::try_unwrap(rc) {
                    take_upvals(&mut c, &mut pending);
                }
            }
            _ => {}
        }
    }
}

fn take_upvals(c: &mut Closure, pending: &mut Vec<Value>) {
    for up in std::mem::take(&mut c.upvals).into_vec() {
        if let Ok(cell) = Rc::try_unwrap(up) {
            let v = cell.into_inner();
            if matches!(v, Value::Table(_) | Value::Func(_)) {
                pending.push(v);
            }
        }
    }
}

fn drain_into(map: &mut Map, pending: &mut Vec<Value>) {
    for (k, v) in map.drain(..) {
        for x in [k, v] {
            if matches!(x, Value::Table(_) | Value::Func(_)) {
                pending.push(x);
            }
        }
    }
}

/// A callable value: a ktap closure or a builtin.
pub enum Function {
    Closure(Closure),
    Builtin(Builtin),
}

/// A compiled function with the variables it captured.
pub struct Closure {
    pub(crate) proto: Rc<Proto>,
    pub(crate) upvals: Box<[Rc<RefCell<Value>>]>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_strings() {
        assert_eq!(parse_int(b"42"), Some(42));
        assert_eq!(parse_int(b" -7 "), Some(-7));
        assert_eq!(parse_int(b"0x10"), Some(16));
        assert_eq!(parse_int(b"0xffffffffffffffff"), Some(-1));
        assert_eq!(parse_int(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_int(b"9223372036854775808"), None);
        assert_eq!(parse_int(b"1.5"), None);
        assert_eq!(parse_int(b"abc"), None);
        assert_eq!(parse_int(b""), None);
        assert_eq!(parse_int(b"-"), None);
    }

    #[test]
    fn table_tombstones_keep_positions() {
        let mut t = Table::new();
        for i in 0..20 {
            t.set(Value::Int(i), Value::Int(i * 10));
        }
        t.set(Value::Int(3), Value::Nil);
        assert_eq!(t.len(), 19);
        assert!(t.get(&Value::Int(3)).is_nil());
        let (pos, k, _) = t.next_from(3).expect("entry");
        assert_eq!((pos, k.to_int()), (4, Some(4)));
        t.set(Value::Int(3), Value::Int(1));
        assert_eq!(t.len(), 20);
        for i in 0..20 {
            t.remove(&Value::Int(i));
        }
        assert_eq!(t.len(), 0);
        t.set(Value::str("x"), Value::Int(1));
        assert_eq!(t.iter().count(), 1);
        assert_eq!(t.get_str("x").to_int(), Some(1));
    }

    #[test]
    fn equality_and_keys() {
        assert!(Value::Int(1) != Value::str("1"));
        assert!(Value::str("ab") == Value::str("ab"));
        assert!(Value::Int(1) != Value::Nil);
        let mut t = Table::new();
        t.set(Value::Int(1), Value::Int(1));
        t.set(Value::str("1"), Value::Int(2));
        t.set(Value::Bool(true), Value::Int(3));
        assert_eq!(t.len(), 3);
    }
}
