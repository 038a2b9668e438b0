//! The JSON API's routes and its OpenAPI 3.1 document, from one list.
//!
//! Every `/api` route is added through [`DocumentedRouter::route`], which puts the
//! handler into the axum router *and* its description into the document, so a
//! route cannot exist undocumented (and the document cannot describe a route that
//! does not exist). Body schemas are derived from the Rust types with `schemars`
//! (JSON Schema 2020-12, which OpenAPI 3.1 uses as is); types without a derived
//! schema yet are described as plain objects.

use std::collections::BTreeMap;

use axum::handler::Handler;
use axum::routing::{on, MethodFilter};
use axum::Router;
use schemars::generate::{Contract, SchemaSettings};
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::AppState;

/// Where the API is mounted; document paths carry it.
pub(crate) const PREFIX: &str = "/api";

/// The HTTP methods the API uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(dead_code)] // PUT and PATCH: for the editing routes still to come
pub(crate) enum Verb {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Verb {
    fn filter(self) -> MethodFilter {
        match self {
            Self::Get => MethodFilter::GET,
            Self::Post => MethodFilter::POST,
            Self::Put => MethodFilter::PUT,
            Self::Patch => MethodFilter::PATCH,
            Self::Delete => MethodFilter::DELETE,
        }
    }

    /// The name in an OpenAPI path item (lower case).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Get => "get",
            Self::Post => "post",
            Self::Put => "put",
            Self::Patch => "patch",
            Self::Delete => "delete",
        }
    }
}

/// Makes the schema of a body in the document.
pub(crate) type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

/// The schema of `T`, referenced from `components.schemas`.
pub(crate) fn schema<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

/// Text, e.g. an event stream.
#[allow(dead_code)] // for GET /api/events, the live-updates stream
pub(crate) fn string(_: &mut SchemaGenerator) -> Schema {
    schemars::json_schema!({ "type": "string" })
}

/// A JSON object whose fields are not described (yet) by a derived schema.
pub(crate) fn object(_: &mut SchemaGenerator) -> Schema {
    schemars::json_schema!({ "type": "object" })
}

/// What the document says about one operation.
#[derive(Clone, Copy)]
pub(crate) struct Doc {
    pub summary: &'static str,
    /// The success status and its body.
    pub status: u16,
    pub response: Option<SchemaFn>,
    pub request: Option<SchemaFn>,
    /// Query parameters: name and what it means.
    pub query: &'static [(&'static str, &'static str)],
    /// Answers without a caller (the document itself); everything else needs one.
    pub public: bool,
    /// The success body's media type (`application/json`, or `text/event-stream`).
    pub content_type: &'static str,
}

impl Doc {
    /// A `200` JSON answer described by `response`, for a signed-in caller.
    pub(crate) const fn json(summary: &'static str, response: SchemaFn) -> Self {
        Self {
            summary,
            status: 200,
            response: Some(response),
            request: None,
            query: &[],
            public: false,
            content_type: "application/json",
        }
    }

    /// A Server-Sent Events stream (`text/event-stream`), for a signed-in caller.
    #[allow(dead_code)] // for GET /api/events, the live-updates stream
    pub(crate) const fn event_stream(summary: &'static str) -> Self {
        Self {
            content_type: "text/event-stream",
            ..Self::json(summary, string)
        }
    }

    pub(crate) const fn with_request(mut self, request: SchemaFn) -> Self {
        self.request = Some(request);
        self
    }

    pub(crate) const fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    pub(crate) const fn with_query(
        mut self,
        query: &'static [(&'static str, &'static str)],
    ) -> Self {
        self.query = query;
        self
    }
}

/// One documented operation.
#[derive(Clone)]
pub(crate) struct Operation {
    pub verb: Verb,
    /// The axum path below [`PREFIX`], e.g. `/tasks/{id}`.
    pub path: &'static str,
    pub doc: Doc,
}

/// An axum router for `/api` that documents every route it is given.
pub(crate) struct DocumentedRouter {
    router: Router<AppState>,
    operations: Vec<Operation>,
}

impl DocumentedRouter {
    pub(crate) fn new() -> Self {
        Self {
            router: Router::new(),
            operations: Vec::new(),
        }
    }

    /// Adds `handler` for `verb` on `path` (axum syntax, `{id}` for parameters),
    /// described by `doc`. Several verbs on one path merge.
    pub(crate) fn route<H, T>(
        mut self,
        verb: Verb,
        path: &'static str,
        handler: H,
        doc: Doc,
    ) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        self.router = self.router.route(path, on(verb.filter(), handler));
        self.operations.push(Operation { verb, path, doc });
        self
    }

    pub(crate) fn operations(&self) -> &[Operation] {
        &self.operations
    }

    pub(crate) fn into_router(self) -> Router<AppState> {
        self.router
    }
}

/// The error body every failing call answers with.
#[derive(Serialize, JsonSchema)]
pub(crate) struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Serialize, JsonSchema)]
struct ErrorDetail {
    /// Stable and machine-readable: `bad_request`, `unauthorized`, `forbidden`,
    /// `not_found`, `conflict`, `unprocessable`, `rate_limited`, `unavailable`, ….
    code: String,
    /// For people: what went wrong and what to do.
    message: String,
}

/// The `{name}` parameters of an axum path.
fn path_parameters(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .collect()
}

/// A stable operation id: the verb and the path's words (`get_tasks_id`).
fn operation_id(op: &Operation) -> String {
    let words: Vec<&str> = op
        .path
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    format!("{}_{}", op.verb.name(), words.join("_"))
}

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    })
}

fn status_text(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No content",
        _ => "Success",
    }
}

fn generator(contract: Contract) -> SchemaGenerator {
    let mut settings = SchemaSettings::draft2020_12();
    settings.definitions_path = "/components/schemas".into();
    settings.meta_schema = None;
    settings.contract = contract;
    settings.into_generator()
}

fn operation(
    op: &Operation,
    responses_gen: &mut SchemaGenerator,
    requests_gen: &mut SchemaGenerator,
) -> Value {
    let mut parameters: Vec<Value> = path_parameters(op.path)
        .into_iter()
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
        .collect();
    parameters.extend(op.doc.query.iter().map(|(name, description)| {
        json!({"name": name, "in": "query", "required": false, "description": description, "schema": {"type": "string"}})
    }));
    let mut success = json!({ "description": status_text(op.doc.status) });
    if let Some(response) = op.doc.response {
        let mut content = Map::new();
        content.insert(
            op.doc.content_type.to_string(),
            json!({ "schema": response(responses_gen) }),
        );
        success["content"] = Value::Object(content);
    }
    let mut responses = Map::new();
    responses.insert(op.doc.status.to_string(), success);
    if op.doc.request.is_some() || !op.doc.query.is_empty() {
        responses.insert("400".into(), error_response("The input is malformed"));
        responses.insert(
            "422".into(),
            error_response("The input breaks a rule; the message says which"),
        );
    }
    if !op.doc.public {
        responses.insert(
            "401".into(),
            error_response("No valid bearer token or session"),
        );
        responses.insert(
            "403".into(),
            error_response("Signed in with the cookie, without the session's X-CSRF-Token (state-changing calls)"),
        );
        responses.insert(
            "404".into(),
            error_response("Nothing of the caller's by that id"),
        );
    }
    responses.insert(
        "503".into(),
        error_response("A dependency is down; retry after Retry-After"),
    );
    let mut item = json!({
        "operationId": operation_id(op),
        "summary": op.doc.summary,
        "responses": responses,
    });
    if !parameters.is_empty() {
        item["parameters"] = Value::Array(parameters);
    }
    if let Some(request) = op.doc.request {
        item["requestBody"] = json!({
            "required": true,
            "content": {"application/json": {"schema": request(requests_gen)}}
        });
    }
    if op.doc.public {
        item["security"] = json!([]);
    }
    item
}

/// The OpenAPI 3.1 document of `operations`.
pub(crate) fn document(operations: &[Operation]) -> Value {
    let mut responses_gen = generator(Contract::Serialize);
    let mut requests_gen = generator(Contract::Deserialize);
    let _ = responses_gen.subschema_for::<ErrorBody>();
    let mut paths: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    for op in operations {
        let item = operation(op, &mut responses_gen, &mut requests_gen);
        paths
            .entry(format!("{PREFIX}{}", op.path))
            .or_default()
            .insert(op.verb.name().to_string(), item);
    }
    let mut schemas = requests_gen.take_definitions(true);
    schemas.extend(responses_gen.take_definitions(true));
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Sidekick API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The caller's own data only: another user's id answers 404. \
                Authenticate with `Authorization: Bearer <token>` (`sidekick users token`) \
                or the `sidekick_session` cookie from signing in; with the cookie, every \
                POST, PUT, PATCH and DELETE needs the session's token in `X-CSRF-Token` \
                (GET /api/me tells it as `csrf_token`)."
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "session": {"type": "apiKey", "in": "cookie", "name": crate::auth::cookie::SESSION_COOKIE}
            }
        },
        "security": [{"bearer": []}, {"session": []}]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_parameters_and_operation_ids_come_from_the_path() {
        assert_eq!(path_parameters("/tasks/{id}/steps/{step}"), ["id", "step"]);
        assert!(path_parameters("/tasks").is_empty());
        let op = Operation {
            verb: Verb::Get,
            path: "/messages/{id}",
            doc: Doc::json("x", object),
        };
        assert_eq!(operation_id(&op), "get_messages_id");
    }

    /// The single list is only single if nobody adds `/api` routes beside it: the
    /// API module builds its routes through `DocumentedRouter` alone, and the app
    /// mounts nothing else under `/api`.
    #[test]
    fn api_routes_are_only_added_through_the_documented_router() {
        let api = include_str!("mod.rs");
        for forbidden in [".route(\"", ".merge(", ".nest("] {
            assert!(
                !api.contains(forbidden),
                "api/mod.rs uses {forbidden}: add routes with DocumentedRouter::route"
            );
        }
        assert_eq!(
            api.matches("Router::new()").count(),
            api.matches("DocumentedRouter::new()").count(),
            "api/mod.rs builds a plain axum Router"
        );
        let app = include_str!("../lib.rs");
        assert_eq!(
            app.matches("\"/api\"").count(),
            1,
            "one mount point for /api"
        );
        assert!(app.contains(".nest(\"/api\", api::routes())"));
        let stream = Operation {
            verb: Verb::Get,
            path: "/events",
            doc: Doc::event_stream("live"),
        };
        let doc = document(&[stream]);
        assert!(
            doc["paths"]["/api/events"]["get"]["responses"]["200"]["content"]
                .get("text/event-stream")
                .is_some()
        );
    }
}
