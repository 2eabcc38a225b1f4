//! Finding one instance in the answer to the CCG query, without decoding the others.
//!
//! The answer of `HcsGetServiceProperties` lists every CCG instance on the host, and each
//! carries a full credential spec. [`find_instance`] reads it in one pass that allocates
//! nothing but the match, in two layers:
//!
//! - the fast path ([`scan`]) checks the JSON syntax of the whole text byte by byte, follows
//!   its structure, compares keys and `Id`s in place, and hands only the wanted instance's
//!   fields to serde_json. It answers every well-formed answer of the usual shape;
//! - everything else (errors to report, escapes in keys or ids, repeated keys) goes to the
//!   streaming decoder below, serde_json's visitor: keys and the `Id` are compared without
//!   allocating, instances whose `Id` does not match are skipped with [`IgnoredAny`] (which
//!   still validates their syntax), and only the match is materialised. When an instance's
//!   `Id` comes after its other fields, those fields are held as borrowed [`RawValue`]
//!   slices of the input until the `Id` decides. The `Properties` array is counted, and
//!   trailing data after the document is rejected.
//!
//! The streaming decoder is the reference: the fast path answers only where it agrees with
//! it, which the unit tests below and the `service_properties` fuzz target check.

mod scan;

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::{
    ContainerCredentialGuardHvSocketServiceConfig, ContainerCredentialGuardInstance,
    ContainerCredentialGuardState, ContainerCredentialGuardSystemInfo, ServiceProperties,
};

/// Why the answer to the CCG query could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FindError {
    /// The text is not a well-formed `ServiceProperties` document.
    #[error("the answer to the CCG query is not a valid ServiceProperties document")]
    Json(#[source] serde_json::Error),
    /// `Properties` does not hold exactly one element (one was asked for).
    #[error("the answer to the CCG query holds {0} properties where exactly one was asked for")]
    PropertyCount(usize),
}

/// Finds the instance whose `Id` is `id` in the answer to the CCG query.
///
/// Returns `Ok(None)` when the answer is well formed but does not list `id`. `Id`s are
/// compared exactly (byte for byte); an instance without an `Id` (or with a `null` one) has
/// the empty id, as in [`list_instances`]. When several instances carry the same `Id`, the
/// first is returned.
///
/// # Errors
/// [`FindError::Json`] when the document is not valid JSON, has trailing data or has fields
/// of the wrong type; [`FindError::PropertyCount`] when `Properties` does not hold exactly
/// one element (a missing or `null` `Properties` counts as zero).
pub fn find_instance(
    doc: &str,
    id: &str,
) -> Result<Option<ContainerCredentialGuardInstance>, FindError> {
    match scan::find(doc, id) {
        Some(found) => Ok(found),
        None => streaming(doc, id),
    }
}

/// [`find_instance`] by the streaming decoder alone, the reference its fast path is held to;
/// built for the fuzz targets only (`cargo fuzz` sets `--cfg fuzzing`).
///
/// # Errors
/// As [`find_instance`].
#[cfg(fuzzing)]
#[doc(hidden)]
pub fn find_instance_reference(
    doc: &str,
    id: &str,
) -> Result<Option<ContainerCredentialGuardInstance>, FindError> {
    streaming(doc, id)
}

/// The streaming decoder: serde_json's visitor over the whole document.
fn streaming(doc: &str, id: &str) -> Result<Option<ContainerCredentialGuardInstance>, FindError> {
    let mut de = serde_json::Deserializer::from_str(doc);
    let (count, found) = TopSeed { id }
        .deserialize(&mut de)
        .map_err(FindError::Json)?;
    de.end().map_err(FindError::Json)?;
    if count == 1 {
        Ok(found)
    } else {
        Err(FindError::PropertyCount(count))
    }
}

/// [`find_instance`] for every use but the read-back right after AddInstance: an answer
/// with no property at all (`{}`, `{"Properties":null}`, `{"Properties":[]}`, `null`) is
/// what an HCS with no instances may send, and lists no instances. An answer with two or
/// more properties is still an error.
///
/// It decides exactly as [`find_instance`] does (fast path and reference alike) and only
/// reads [`FindError::PropertyCount`]`(0)` as "not listed".
///
/// # Errors
/// As [`find_instance`], except for a count of zero.
pub fn find_listed_instance(
    doc: &str,
    id: &str,
) -> Result<Option<ContainerCredentialGuardInstance>, FindError> {
    match find_instance(doc, id) {
        Err(FindError::PropertyCount(0)) => Ok(None),
        other => other,
    }
}

/// [`list_instances`] for listings: an answer with no property at all lists no instances
/// (see [`find_listed_instance`]).
///
/// # Errors
/// As [`list_instances`], except for a count of zero.
pub fn list_listed_instances(
    doc: &str,
) -> Result<Vec<ContainerCredentialGuardInstance>, FindError> {
    match list_instances(doc) {
        Err(FindError::PropertyCount(0)) => Ok(Vec::new()),
        other => other,
    }
}

/// Decodes every instance of the answer to the CCG query (for listings).
///
/// # Errors
/// As [`find_instance`].
pub fn list_instances(doc: &str) -> Result<Vec<ContainerCredentialGuardInstance>, FindError> {
    let props: Option<ServiceProperties> = serde_json::from_str(doc).map_err(FindError::Json)?;
    let props = props.unwrap_or_default();
    if props.properties.len() != 1 {
        return Err(FindError::PropertyCount(props.properties.len()));
    }
    let info: Option<ContainerCredentialGuardSystemInfo> =
        serde_json::from_str(props.properties[0].get()).map_err(FindError::Json)?;
    Ok(info.unwrap_or_default().instances)
}

/// Accepts a key and says whether it is the one wanted, without allocating.
struct KeyIs(&'static str);

impl<'de> DeserializeSeed<'de> for KeyIs {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for KeyIs {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
        Ok(v == self.0)
    }
}

/// Accepts an instance key and classifies it.
#[derive(Clone, Copy)]
enum InstanceKey {
    Id,
    CredentialGuard,
    HvSocketConfig,
    Other,
}

struct InstanceKeySeed;

impl<'de> DeserializeSeed<'de> for InstanceKeySeed {
    type Value = InstanceKey;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<InstanceKey, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for InstanceKeySeed {
    type Value = InstanceKey;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<InstanceKey, E> {
        Ok(match v {
            "Id" => InstanceKey::Id,
            "CredentialGuard" => InstanceKey::CredentialGuard,
            "HvSocketConfig" => InstanceKey::HvSocketConfig,
            _ => InstanceKey::Other,
        })
    }
}

/// The whole document: `{"Properties":[...]}` (or `null`).
struct TopSeed<'a> {
    id: &'a str,
}

type Found = (usize, Option<ContainerCredentialGuardInstance>);

impl<'de> DeserializeSeed<'de> for TopSeed<'_> {
    type Value = Found;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Found, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TopSeed<'_> {
    type Value = Found;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a ServiceProperties object")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Found, E> {
        Ok((0, None))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Found, A::Error> {
        let mut found = (0, None);
        while let Some(is_props) = map.next_key_seed(KeyIs("Properties"))? {
            if is_props {
                found = map.next_value_seed(PropertiesSeed { id: self.id })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

/// `Properties`: counted; the first element is searched, the others skipped.
struct PropertiesSeed<'a> {
    id: &'a str,
}

impl<'de> DeserializeSeed<'de> for PropertiesSeed<'_> {
    type Value = Found;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Found, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for PropertiesSeed<'_> {
    type Value = Found;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of properties")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Found, E> {
        Ok((0, None))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Found, A::Error> {
        let mut count = 0usize;
        let mut found = None;
        loop {
            if count == 0 {
                match seq.next_element_seed(SystemInfoSeed { id: self.id })? {
                    Some(f) => found = f,
                    None => break,
                }
            } else if seq.next_element::<IgnoredAny>()?.is_none() {
                break;
            }
            count += 1;
        }
        Ok((count, found))
    }
}

/// One `ContainerCredentialGuardSystemInfo`: `{"Instances":[...]}` (or `null`).
struct SystemInfoSeed<'a> {
    id: &'a str,
}

type One = Option<ContainerCredentialGuardInstance>;

impl<'de> DeserializeSeed<'de> for SystemInfoSeed<'_> {
    type Value = One;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<One, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for SystemInfoSeed<'_> {
    type Value = One;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a ContainerCredentialGuardSystemInfo object")
    }
    fn visit_unit<E: de::Error>(self) -> Result<One, E> {
        Ok(None)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<One, A::Error> {
        let mut found = None;
        while let Some(is_instances) = map.next_key_seed(KeyIs("Instances"))? {
            if is_instances {
                found = map.next_value_seed(InstancesSeed { id: self.id })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

/// `Instances`: searched until the first match, the rest skipped.
struct InstancesSeed<'a> {
    id: &'a str,
}

impl<'de> DeserializeSeed<'de> for InstancesSeed<'_> {
    type Value = One;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<One, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for InstancesSeed<'_> {
    type Value = One;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of instances")
    }
    fn visit_unit<E: de::Error>(self) -> Result<One, E> {
        Ok(None)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<One, A::Error> {
        let mut found = None;
        loop {
            if found.is_some() {
                if seq.next_element::<IgnoredAny>()?.is_none() {
                    break;
                }
            } else {
                match seq.next_element_seed(InstanceSeed { id: self.id })? {
                    Some(f) => found = f,
                    None => break,
                }
            }
        }
        Ok(found)
    }
}

/// Says whether an `Id` value equals the wanted id; `null` never does.
struct IdIs<'a>(&'a str);

impl<'de> DeserializeSeed<'de> for IdIs<'_> {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

impl Visitor<'_> for IdIs<'_> {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string or null")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
        Ok(v == self.0)
    }
    fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
        Ok(self.0.is_empty())
    }
}

/// A field held back until the `Id` is known.
enum Held<'de, T> {
    Absent,
    Raw(&'de RawValue),
    Decoded(Option<T>),
}

impl<'de, T: serde::Deserialize<'de>> Held<'de, T> {
    fn take<E: de::Error>(self) -> Result<Option<T>, E> {
        match self {
            Held::Absent => Ok(None),
            Held::Decoded(v) => Ok(v),
            Held::Raw(raw) => {
                // A borrowed slice of the input: decoding it again borrows from the input too.
                let text: &'de str = raw.get();
                serde_json::from_str::<Option<T>>(text).map_err(E::custom)
            }
        }
    }
}

/// One instance: materialised only when its `Id` matches.
struct InstanceSeed<'a> {
    id: &'a str,
}

impl<'de> DeserializeSeed<'de> for InstanceSeed<'_> {
    type Value = One;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<One, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> InstanceSeed<'_> {
    fn field<A, T>(map: &mut A, matched: Option<bool>) -> Result<Held<'de, T>, A::Error>
    where
        A: MapAccess<'de>,
        T: serde::Deserialize<'de>,
    {
        Ok(match matched {
            Some(false) => {
                map.next_value::<IgnoredAny>()?;
                Held::Absent
            }
            Some(true) => Held::Decoded(map.next_value::<Option<T>>()?),
            None => Held::Raw(map.next_value::<&'de RawValue>()?),
        })
    }
}

impl<'de> Visitor<'de> for InstanceSeed<'_> {
    type Value = One;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a ContainerCredentialGuardInstance object")
    }
    fn visit_unit<E: de::Error>(self) -> Result<One, E> {
        Ok(None)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<One, A::Error> {
        let mut matched: Option<bool> = None;
        let mut cg: Held<'de, ContainerCredentialGuardState> = Held::Absent;
        let mut hv: Held<'de, ContainerCredentialGuardHvSocketServiceConfig> = Held::Absent;
        while let Some(key) = map.next_key_seed(InstanceKeySeed)? {
            match key {
                InstanceKey::Id => matched = Some(map.next_value_seed(IdIs(self.id))?),
                InstanceKey::CredentialGuard => cg = Self::field(&mut map, matched)?,
                InstanceKey::HvSocketConfig => hv = Self::field(&mut map, matched)?,
                InstanceKey::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        // An instance without an `Id` has the empty id (Go's zero value), as the full decode
        // reads it.
        if !matched.unwrap_or(self.id.is_empty()) {
            return Ok(None);
        }
        Ok(Some(ContainerCredentialGuardInstance {
            id: self.id.to_owned(),
            credential_guard: cg.take()?,
            hv_socket_config: hv.take()?,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO: &str = r#"{"Properties":[{"Instances":[
        {"CredentialGuard":{"Cookie":"aa","Transport":"LRPC"},"Id":"late"},
        {"Id":"x","CredentialGuard":{"Cookie":"bb"}},
        {"Id":"y","CredentialGuard":{"Cookie":"cc"},"HvSocketConfig":{"ServiceId":"s","ServiceConfig":{"AllowWildcardBinds":true}}}
    ]}]}"#;

    #[test]
    fn finds_by_id_in_any_field_order() {
        let late = find_instance(TWO, "late").unwrap().unwrap();
        assert_eq!(late.credential_guard.unwrap().cookie, "aa");
        let y = find_instance(TWO, "y").unwrap().unwrap();
        assert_eq!(y.hv_socket_config.unwrap().service_id, "s");
        assert!(find_instance(TWO, "nope").unwrap().is_none());
        assert!(
            find_instance(TWO, "X").unwrap().is_none(),
            "ids compare exactly"
        );
    }

    #[test]
    fn counts_properties() {
        for (doc, n) in [
            ("{}", 0),
            (r#"{"Properties":null}"#, 0),
            (r#"{"Properties":[]}"#, 0),
            ("null", 0),
            (r#"{"Properties":[{},{}]}"#, 2),
        ] {
            match find_instance(doc, "a") {
                Err(FindError::PropertyCount(got)) => assert_eq!(got, n, "{doc}"),
                other => panic!("{doc}: {other:?}"),
            }
        }
        assert!(
            find_instance(r#"{"Properties":[null]}"#, "a")
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn listings_read_no_property_as_no_instances() {
        for doc in [
            "{}",
            r#"{"Properties":null}"#,
            r#"{"Properties":[]}"#,
            "null",
        ] {
            assert!(
                matches!(find_instance(doc, "a"), Err(FindError::PropertyCount(0))),
                "the read-back stays strict: {doc}"
            );
            assert!(find_listed_instance(doc, "a").unwrap().is_none(), "{doc}");
            assert!(list_listed_instances(doc).unwrap().is_empty(), "{doc}");
        }
        for doc in [r#"{"Properties":[{},{}]}"#, "", "{", r#"{"Properties":{}}"#] {
            assert!(find_listed_instance(doc, "a").is_err(), "{doc}");
            assert!(list_listed_instances(doc).is_err(), "{doc}");
        }
        assert_eq!(
            find_listed_instance(TWO, "x").unwrap(),
            find_instance(TWO, "x").unwrap()
        );
    }

    #[test]
    fn rejects_bad_documents() {
        for doc in [
            "",
            "{",
            r#"{"Properties":[{}]} trailing"#,
            r#"{"Properties":[{"Instances":[{"Id":"a","CredentialGuard":{"Cookie":5}}]}]}"#,
            r#"{"Properties":[{"Instances":[{"Id":"b","CredentialGuard":{"Cookie":"\uZZZZ"}}]}]}"#,
            r#"{"Properties":"nope"}"#,
            "[]",
        ] {
            assert!(
                matches!(find_instance(doc, "a"), Err(FindError::Json(_))),
                "{doc}"
            );
        }
    }

    #[test]
    fn escaped_keys_and_ids_match() {
        let doc = r#"{"Propert\u0069es":[{"Instances":[{"\u0049d":"a\u00e9","CredentialGuard":{"Cookie":"z"}}]}]}"#;
        let found = find_instance(doc, "aé").unwrap().unwrap();
        assert_eq!(found.credential_guard.unwrap().cookie, "z");
    }

    #[test]
    fn a_missing_id_is_the_empty_id() {
        // Found by the service_properties fuzz target: list_instances reads a missing `Id`
        // as "", so looking "" up must find that instance, with its fields.
        let doc =
            r#"{"Properties":[{"Instances":[{"HvSocketConfig":{"ServiceId":"n"}},{"Id":"a"}]}]}"#;
        let found = find_instance(doc, "").unwrap();
        assert_eq!(found.as_ref(), list_instances(doc).unwrap().first());
        assert_eq!(found.unwrap().hv_socket_config.unwrap().service_id, "n");
        assert_eq!(find_instance(doc, "a").unwrap().unwrap().id, "a");
        let doc =
            r#"{"Properties":[{"Instances":[{"Id":"a"},{"CredentialGuard":{"Cookie":"z"}}]}]}"#;
        let found = find_instance(doc, "").unwrap().unwrap();
        assert_eq!(found.credential_guard.unwrap().cookie, "z");
    }

    /// The fast path's answer, checked against the reference: it may decline, never differ.
    fn fast(doc: &str, id: &str) -> Option<Option<ContainerCredentialGuardInstance>> {
        let fast = scan::find(doc, id);
        if let Some(found) = &fast {
            match streaming(doc, id) {
                Ok(reference) => assert_eq!(found, &reference, "{doc} / {id}"),
                Err(e) => panic!("the fast path accepted what the reference refuses ({e}): {doc}"),
            }
        }
        fast
    }

    const GOLDEN: &str = include_str!("../../tests/fixtures/golden/s5_service_properties.json");

    #[test]
    fn the_fast_path_answers_usual_answers() {
        for (doc, ids) in [
            (TWO, &["late", "x", "y", "nope", ""][..]),
            (
                GOLDEN,
                &[
                    "a3f1c2d4e5b60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90",
                    "c0ffee00-0000-4000-8000-000000000001",
                    "nope",
                ][..],
            ),
            (
                r#" {"Properties" : [ { "Instances" : [ null , { } ] } ] } "#,
                &["a", ""][..],
            ),
            (r#"{"Properties":[{"Instances":null}]}"#, &["a"][..]),
            (
                r#"{"Properties":[null],"More":[1,-0.5e+3,true,false,null,"\u00e9\n"]}"#,
                &["a"][..],
            ),
        ] {
            for id in ids {
                assert!(fast(doc, id).is_some(), "declined {doc} / {id}");
            }
        }
        let golden = list_instances(GOLDEN).unwrap();
        assert_eq!(fast(GOLDEN, &golden[1].id), Some(Some(golden[1].clone())));
    }

    #[test]
    fn the_fast_path_declines_what_the_reference_decides() {
        for doc in [
            // Errors, all reported by the reference.
            "",
            "null",
            "{",
            r#"{"Properties":[]}"#,
            r#"{"Properties":[{},{}]}"#,
            r#"{"Properties":[{}]} x"#,
            r#"{"Properties":[{}],}"#,
            r#"{"Properties":[{"Instances":[{"Id":"a","CredentialGuard":{"Cookie":5}}]}]}"#,
            r#"{"Properties":[{"Instances":[{"Id":"b","CredentialGuard":{"Cookie":"\uZZZZ"}}]}]}"#,
            r#"{"Properties":[{"Instances":[{"Id":"b","X":[1,]}]}]}"#,
            r#"{"Properties":[{"Instances":[{"Id":"b","X":01}]}]}"#,
            r#"{"Properties":[{"Instances":[{"Id":"b","X":"bad \escape"}]}]}"#,
            "{\"Properties\":[{\"Instances\":[{\"Id\":\"b\",\"X\":\"a raw\ttab\"}]}]}",
            r#"{"Properties":[{"Instances":[7]}]}"#,
            // Decided after decoding escapes, or by which repeated key comes last.
            r#"{"Properties":[{"Instances":[{"\u0049d":"a"}]}]}"#,
            r#"{"Properties":[{"Instances":[{"Id":"\u0061"}]}]}"#,
            r#"{"Properties":[{"Instances":[{"Id":"b","Id":"a"}]}]}"#,
            r#"{"Properties":[{"Instances":[{"Id":"a","CredentialGuard":{},"CredentialGuard":null}]}]}"#,
            r#"{"Properties":[{"Instances":[]}],"Properties":[{"Instances":[{"Id":"a"}]}]}"#,
        ] {
            assert!(fast(doc, "a").is_none(), "answered {doc}");
        }
        let deep = format!(
            r#"{{"Properties":[{{"Instances":[{{"Id":"b","X":{}{}}}]}}]}}"#,
            "[".repeat(scan::MAX_DEPTH + 1),
            "]".repeat(scan::MAX_DEPTH + 1)
        );
        assert!(fast(&deep, "a").is_none());
        assert!(
            find_instance(&deep, "a").unwrap().is_none(),
            "the reference has no depth limit"
        );
    }

    proptest::proptest! {
        // A fixed seed: the same cases every run (`PROPTEST_RNG_SEED=<n>` runs others).
        #![proptest_config(proptest::prelude::ProptestConfig {
            rng_seed: proptest::test_runner::RngSeed::Fixed(12345),
            ..proptest::prelude::ProptestConfig::with_cases(2000)
        })]
        /// Answers with a few bytes changed: wherever the fast path answers, it agrees with the
        /// reference (the fuzz target does the same at length).
        #[test]
        fn the_fast_path_never_differs_from_the_reference(
            base in 0..3usize,
            edits in proptest::collection::vec(
                (0..2000usize, proptest::sample::select(&br#"{}[]:,"\ nulltruefalse0123456789-+.eEu"#[..]), 0..3u8),
                1..4,
            ),
            id in proptest::sample::select(&["late", "x", "y", "", "a3f1c2d4e5b60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"][..]),
        ) {
            let mut doc = [TWO, GOLDEN, r#"{"Properties":[{"Instances":[{"Id":"x","A":[{"b":"\"c\""}]}]}]}"#][base]
                .as_bytes()
                .to_vec();
            for (at, byte, how) in edits {
                let at = at % (doc.len() + 1);
                match how {
                    0 => doc.insert(at, byte),
                    1 if at < doc.len() => { doc.remove(at); }
                    _ if at < doc.len() => doc[at] = byte,
                    _ => {}
                }
            }
            let doc = String::from_utf8(doc).expect("ASCII edits of ASCII text");
            fast(&doc, id);
        }
    }

    #[test]
    fn agrees_with_the_full_decode() {
        let all = list_instances(TWO).unwrap();
        for inst in &all {
            assert_eq!(find_instance(TWO, &inst.id).unwrap().as_ref(), Some(inst));
        }
    }
}
