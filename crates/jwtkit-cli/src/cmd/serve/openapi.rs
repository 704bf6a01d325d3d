//! `GET /openapi.json`: the service's OpenAPI 3.1 description.
//!
//! `docs/openapi.yaml` is the one source: it is compiled into the binary and
//! converted to JSON once, at the first request. The YAML is read with
//! `saphyr` (YAML 1.2, pure Rust, maintained; serde_yaml is archived). The
//! conversion is strict: what JSON cannot express (a non-string mapping key,
//! a tag, a non-finite number, several documents) is an error naming its
//! place in the document, never a silent change. Aliases are resolved by the
//! loader, as PyYAML (which schemathesis reads the file with) does too.
//!
//! A unit test converts the compiled description, so a binary whose tests
//! passed serves it; should the conversion fail anyway, the answer is a
//! `500` and the reason goes to the log.

use std::fmt;
use std::sync::OnceLock;

use axum::body::Bytes;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use saphyr::{LoadableYamlNode, Scalar, Yaml};
use serde_json::{json, Map, Number, Value};

/// `docs/openapi.yaml`, as written.
const OPENAPI_YAML: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../docs/openapi.yaml"
));

/// `GET /openapi.json`: the description as `application/json`, its
/// `servers` naming this service's issuer URL (the base of its endpoints,
/// as the discovery metadata gives them) rather than the example in the file.
pub(crate) async fn openapi_json(
    axum::extract::State(state): axum::extract::State<std::sync::Arc<super::http::AppState>>,
) -> Response {
    match served(state.tokens.issuer()) {
        Ok(json) => (
            [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
            json.clone(),
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "the OpenAPI description compiled into this binary cannot be served");
            let mut response = (
                StatusCode::INTERNAL_SERVER_ERROR,
                axum::Json(json!({
                    "error": "server_error",
                    "error_description": "the OpenAPI description compiled into this binary is not valid; \
                                          see the server's log, and docs/openapi.yaml in the source"
                })),
            )
                .into_response();
            response
                .headers_mut()
                .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
    }
}

/// The JSON bytes served, converted once (a process has one issuer).
fn served(issuer: &str) -> &'static Result<Bytes, SpecError> {
    static SERVED: OnceLock<Result<Bytes, SpecError>> = OnceLock::new();
    SERVED.get_or_init(|| {
        let mut document = yaml_to_json(OPENAPI_YAML)?;
        document["servers"] = json!([{
            "url": issuer.trim_end_matches('/'),
            "description": "this jwtkit serve (its --issuer)",
        }]);
        serde_json::to_vec(&document)
            .map(Bytes::from)
            .map_err(|e| SpecError::new("", format!("cannot be written as JSON: {e}")))
    })
}

/// Why a YAML text has no JSON equivalent: where (a JSON Pointer into the
/// document, empty for the whole) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SpecError {
    at: String,
    problem: String,
}

impl SpecError {
    fn new(at: &str, problem: String) -> Self {
        SpecError {
            at: at.to_owned(),
            problem,
        }
    }
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = if self.at.is_empty() { "/" } else { &self.at };
        write!(f, "docs/openapi.yaml at {at}: {}", self.problem)
    }
}

/// The JSON value of a YAML text holding exactly one document.
fn yaml_to_json(text: &str) -> Result<Value, SpecError> {
    let documents = Yaml::load_from_str(text)
        .map_err(|e| SpecError::new("", format!("is not valid YAML: {e}")))?;
    match documents.as_slice() {
        [document] => node_to_json(document, ""),
        [] => Err(SpecError::new("", "holds no YAML document".into())),
        _ => Err(SpecError::new(
            "",
            format!(
                "holds {} YAML documents (`---` separators); keep one",
                documents.len()
            ),
        )),
    }
}

/// The JSON value of one YAML node at `at` (a JSON Pointer).
fn node_to_json(node: &Yaml<'_>, at: &str) -> Result<Value, SpecError> {
    match node {
        Yaml::Value(scalar) => scalar_to_json(scalar, at),
        Yaml::Sequence(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| node_to_json(item, &format!("{at}/{i}")))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        Yaml::Mapping(members) => {
            let mut object = Map::with_capacity(members.len());
            for (key, value) in members {
                let Yaml::Value(Scalar::String(name)) = key else {
                    return Err(SpecError::new(
                        at,
                        format!(
                            "a mapping key is not a string ({}); quote it (status codes too: '200':)",
                            describe(key)
                        ),
                    ));
                };
                let child = format!("{at}/{}", name.replace('~', "~0").replace('/', "~1"));
                object.insert(name.to_string(), node_to_json(value, &child)?);
            }
            Ok(Value::Object(object))
        }
        Yaml::Tagged(..) => Err(SpecError::new(
            at,
            "a tagged node (`!tag`); JSON has no tags, write the plain value".into(),
        )),
        Yaml::Alias(_) => Err(SpecError::new(
            at,
            "an alias (`*name`) the loader did not resolve; write the value out, or use an \
             OpenAPI `$ref`"
                .into(),
        )),
        Yaml::Representation(..) | Yaml::BadValue => Err(SpecError::new(
            at,
            "a scalar that does not resolve to a YAML 1.2 core-schema value".into(),
        )),
    }
}

fn scalar_to_json(scalar: &Scalar<'_>, at: &str) -> Result<Value, SpecError> {
    Ok(match scalar {
        Scalar::Null => Value::Null,
        Scalar::Boolean(b) => Value::Bool(*b),
        Scalar::Integer(i) => Value::Number(Number::from(*i)),
        Scalar::FloatingPoint(f) => Number::from_f64(f.into_inner())
            .map(Value::Number)
            .ok_or_else(|| {
                SpecError::new(
                    at,
                    format!("the number {f} has no JSON form (infinite or NaN)"),
                )
            })?,
        Scalar::String(s) => Value::String(s.to_string()),
    })
}

/// What a non-string key is, for the error message.
fn describe(node: &Yaml<'_>) -> String {
    match node {
        Yaml::Value(Scalar::Integer(i)) => format!("the integer {i}"),
        Yaml::Value(Scalar::FloatingPoint(f)) => format!("the number {f}"),
        Yaml::Value(Scalar::Boolean(b)) => format!("the boolean {b}"),
        Yaml::Value(Scalar::Null) => "null".into(),
        Yaml::Sequence(_) => "a sequence".into(),
        Yaml::Mapping(_) => "a mapping".into(),
        _ => "not a plain scalar".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The compiled description converts, is OpenAPI 3.1, and what is
    /// served is exactly its JSON form.
    #[test]
    fn the_compiled_description_is_served_as_its_json_form() {
        let document = yaml_to_json(OPENAPI_YAML).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(document["openapi"], "3.1.0");
        assert_eq!(
            document["info"]["version"],
            env!("CARGO_PKG_VERSION"),
            "docs/openapi.yaml's info.version is not this release's version"
        );
        let body = served("https://auth.example.com/")
            .as_ref()
            .unwrap_or_else(|e| panic!("{e}"));
        let served: Value = serde_json::from_slice(body).unwrap();
        // Served as written, but for `servers`: the service's own base URL.
        let mut expected = document;
        expected["servers"] = json!([{
            "url": "https://auth.example.com",
            "description": "this jwtkit serve (its --issuer)",
        }]);
        assert_eq!(served, expected);
    }

    /// Every route of the router is described, with its methods.
    #[test]
    fn every_route_is_described() {
        let document = yaml_to_json(OPENAPI_YAML).unwrap_or_else(|e| panic!("{e}"));
        for (path, method) in [
            ("/token", "post"),
            ("/revoke", "post"),
            ("/introspect", "post"),
            ("/userinfo", "get"),
            ("/userinfo", "post"),
            ("/.well-known/jwks.json", "get"),
            ("/.well-known/openid-configuration", "get"),
            ("/.well-known/oauth-authorization-server", "get"),
            ("/healthz", "get"),
            ("/openapi.json", "get"),
        ] {
            assert!(
                document["paths"][path][method].is_object(),
                "{method} {path} is not in docs/openapi.yaml"
            );
        }
    }

    #[test]
    fn scalars_follow_the_yaml_1_2_core_schema() {
        let value = yaml_to_json(
            "a: 1\nb: -2.5\nc: true\nd: null\ne: '200'\nf: yes\ng: [x, 'on']\nh: |\n  two\n  lines\n\
             i: &shared {x: 1}\nj: *shared\n",
        )
        .unwrap();
        // An alias stands for its anchor's value, as in PyYAML.
        assert_eq!(
            value,
            json!({"a": 1, "b": -2.5, "c": true, "d": null, "e": "200", "f": "yes",
                   "g": ["x", "on"], "h": "two\nlines\n", "i": {"x": 1}, "j": {"x": 1}})
        );
    }

    #[test]
    fn what_json_cannot_express_is_an_error_naming_its_place() {
        let err = yaml_to_json("paths:\n  /token:\n    responses:\n      200: {}\n").unwrap_err();
        assert_eq!(err.at, "/paths/~1token/responses");
        assert!(err.problem.contains("the integer 200"), "{err}");
        assert!(err
            .to_string()
            .starts_with("docs/openapi.yaml at /paths/~1token/responses: "));

        let err = yaml_to_json("a: !custom 1\n").unwrap_err();
        assert_eq!(err.at, "/a");
        assert!(err.problem.contains("tagged"), "{err}");

        let err = yaml_to_json("a: .inf\n").unwrap_err();
        assert_eq!(err.at, "/a");
        assert!(err.problem.contains("no JSON form"), "{err}");

        let err = yaml_to_json("a: 1\n---\nb: 2\n").unwrap_err();
        assert!(err.problem.contains("2 YAML documents"), "{err}");

        let err = yaml_to_json("").unwrap_err();
        assert!(err.problem.contains("no YAML document"), "{err}");

        let err = yaml_to_json("a: 1\na: 2\n").unwrap_err();
        assert!(err.problem.contains("not valid YAML"), "{err}");

        let err = yaml_to_json("a: [1\n").unwrap_err();
        assert!(err.problem.contains("not valid YAML"), "{err}");
    }
}
