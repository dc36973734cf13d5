//! The per-record reader: one pass of serde_json's parser over the record's bytes that keeps
//! only the values on the features' and the id's paths, without building a `Value` tree
//! (which costs more than everything else a record goes through).
//!
//! The paths form a tree ([`Plan`]) walked alongside the parser: a key on a path descends, any
//! other value is skipped (its syntax is still checked). Values on the paths are the same as
//! a `Value` tree would hold, duplicate keys included (the last one wins). What is skipped is
//! not converted, so a number beyond a 64-bit float or a lone surrogate escape in a field no
//! feature reads is not an error here, while a `Value` parse would refuse the record.

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::path::FieldPath;
use crate::value::Scalar;

/// The paths to read, as a tree; node 0 is the record itself.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Plan {
    nodes: Vec<Node>,
    /// For each feature, the slot holding its field's value (`None`: it reads no field).
    pub(crate) feature_slots: Vec<Option<usize>>,
    /// The slot holding the id field's value.
    pub(crate) id_slot: usize,
    /// The slot holding the key field's value, when records are keyed by a field.
    pub(crate) key_slot: Option<usize>,
    /// The slot holding the time field's value, when records are timed by a field.
    pub(crate) time_slot: Option<usize>,
    /// Each slot's path, to read the same values from a parsed record.
    pub(crate) paths: Vec<FieldPath>,
}

#[derive(Debug, Clone, PartialEq, Default)]
struct Node {
    /// Children by object key.
    keys: Vec<(Box<str>, usize)>,
    /// Children by array index.
    indices: Vec<(usize, usize)>,
    /// The slot this node's value fills, if a path ends here.
    slot: Option<usize>,
    /// Every slot at or below this node: emptied when the node is read again (a duplicate
    /// key replaces everything under it, as in a `Value` tree).
    below: Vec<usize>,
}

/// Values found, one per slot.
pub(crate) type Slots<'de> = [Option<Scalar<'de>>];

/// Slots held on the stack; a plan with more takes a vector.
const STACK_SLOTS: usize = 8;

/// The fields a plan reads.
pub(crate) struct Fields<'a, I> {
    /// The features' fields, in row order (`None`: a feature without a field).
    pub(crate) features: I,
    /// The id field.
    pub(crate) id: &'a FieldPath,
    /// The key field, if records are keyed by one.
    pub(crate) key: Option<&'a FieldPath>,
    /// The time field, if records are timed by one.
    pub(crate) time: Option<&'a FieldPath>,
}

impl Plan {
    /// The tree of the fields.
    pub(crate) fn new<'a, I>(fields: Fields<'a, I>) -> Plan
    where
        I: IntoIterator<Item = Option<&'a FieldPath>>,
    {
        let mut plan = Plan {
            nodes: vec![Node::default()],
            ..Plan::default()
        };
        plan.feature_slots = fields
            .features
            .into_iter()
            .map(|f| f.map(|f| plan.add(f)))
            .collect();
        plan.id_slot = plan.add(fields.id);
        plan.key_slot = fields.key.map(|f| plan.add(f));
        plan.time_slot = fields.time.map(|f| plan.add(f));
        plan
    }

    /// Slots per record.
    pub(crate) fn slots(&self) -> usize {
        self.paths.len()
    }

    fn add(&mut self, path: &FieldPath) -> usize {
        let mut node = 0;
        let mut visited = vec![0];
        for token in path.tokens() {
            let existing = self.nodes[node]
                .keys
                .iter()
                .find(|(key, _)| **key == *token.key)
                .map(|&(_, child)| child);
            node = match existing {
                Some(child) => child,
                None => {
                    let child = self.nodes.len();
                    self.nodes.push(Node::default());
                    self.nodes[node].keys.push((token.key.clone(), child));
                    if let Some(index) = token.index {
                        self.nodes[node].indices.push((index, child));
                    }
                    child
                }
            };
            visited.push(node);
        }
        if let Some(slot) = self.nodes[node].slot {
            return slot;
        }
        let slot = self.paths.len();
        self.paths.push(path.clone());
        self.nodes[node].slot = Some(slot);
        for &node in &visited {
            self.nodes[node].below.push(slot);
        }
        slot
    }

    /// Parses `text` (one JSON value), keeping the values on the paths, and hands them to
    /// `use_slots` (`None`: valid JSON, but not an object).
    pub(crate) fn read<'de, T>(
        &self,
        text: &'de str,
        use_slots: impl FnOnce(Option<&Slots<'de>>) -> T,
    ) -> Result<T, serde_json::Error> {
        let mut on_stack: [Option<Scalar<'de>>; STACK_SLOTS] = Default::default();
        let mut on_heap = Vec::new();
        let slots: &mut Slots<'de> = match on_stack.get_mut(..self.slots()) {
            Some(slots) => slots,
            None => {
                on_heap.resize(self.slots(), None);
                &mut on_heap
            }
        };
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let is_object = NodeSeed {
            plan: self,
            node: 0,
            slots,
        }
        .deserialize(&mut deserializer)?;
        deserializer.end()?;
        Ok(use_slots(is_object.then_some(slots)))
    }
}

/// Reads the value at one node; returns whether it was an object.
struct NodeSeed<'p, 's, 'de> {
    plan: &'p Plan,
    node: usize,
    slots: &'s mut Slots<'de>,
}

impl NodeSeed<'_, '_, '_> {
    fn node(&self) -> &Node {
        &self.plan.nodes[self.node]
    }
}

impl<'de> DeserializeSeed<'de> for NodeSeed<'_, '_, 'de> {
    type Value = bool;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        for &slot in &self.plan.nodes[self.node].below {
            self.slots[slot] = None;
        }
        deserializer.deserialize_any(self)
    }
}

impl<'de> NodeSeed<'_, '_, 'de> {
    fn fill<E>(self, value: Scalar<'de>) -> Result<bool, E> {
        if let Some(slot) = self.node().slot {
            self.slots[slot] = Some(value);
        }
        Ok(false)
    }
}

impl<'de> Visitor<'de> for NodeSeed<'_, '_, 'de> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, value: bool) -> Result<bool, E> {
        self.fill(Scalar::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<bool, E> {
        self.fill(Scalar::Int(value))
    }

    fn visit_u64<E>(self, value: u64) -> Result<bool, E> {
        // As a `Value` holds it: an integer that fits i64 is one.
        self.fill(match i64::try_from(value) {
            Ok(value) => Scalar::Int(value),
            Err(_) => Scalar::UInt(value),
        })
    }

    fn visit_f64<E>(self, value: f64) -> Result<bool, E> {
        self.fill(Scalar::Float(value))
    }

    fn visit_borrowed_str<E>(self, value: &'de str) -> Result<bool, E> {
        self.fill(Scalar::Str(Cow::Borrowed(value)))
    }

    fn visit_str<E>(self, value: &str) -> Result<bool, E> {
        self.fill(Scalar::Str(Cow::Owned(value.to_string())))
    }

    fn visit_string<E>(self, value: String) -> Result<bool, E> {
        self.fill(Scalar::Str(Cow::Owned(value)))
    }

    fn visit_unit<E>(self) -> Result<bool, E> {
        self.fill(Scalar::Null)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        let NodeSeed { plan, node, slots } = self;
        let node = &plan.nodes[node];
        if let Some(slot) = node.slot {
            slots[slot] = Some(Scalar::Object);
        }
        if node.keys.is_empty() {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            return Ok(true);
        }
        while let Some(child) = map.next_key_seed(KeySeed(node))? {
            match child {
                Some(child) => {
                    map.next_value_seed(NodeSeed {
                        plan,
                        node: child,
                        slots,
                    })?;
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(true)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        let NodeSeed { plan, node, slots } = self;
        let node = &plan.nodes[node];
        if let Some(slot) = node.slot {
            slots[slot] = Some(Scalar::Array);
        }
        let mut index = 0usize;
        loop {
            let child = node
                .indices
                .iter()
                .find(|&&(at, _)| at == index)
                .map(|&(_, child)| child);
            let more = match child {
                Some(child) => seq
                    .next_element_seed(NodeSeed {
                        plan,
                        node: child,
                        slots,
                    })?
                    .is_some(),
                None => seq.next_element::<IgnoredAny>()?.is_some(),
            };
            if !more {
                return Ok(false);
            }
            index += 1;
        }
    }
}

/// Reads an object key: the child it leads to, if any.
struct KeySeed<'p>(&'p Node);

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Option<usize>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Option<usize>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E>(self, key: &str) -> Result<Option<usize>, E> {
        Ok(self
            .0
            .keys
            .iter()
            .find(|(name, _)| **name == *key)
            .map(|&(_, child)| child))
    }
}
