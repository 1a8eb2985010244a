"""Generate the typed TypeScript client of the HTTP gateway (run as `make clients`).

Its input is the gateway's own OpenAPI document, built in-process from the protos'
``google.api.http`` annotations (no server, no network, no npm at build time); its output,
``clients/typescript/jobs.ts``, is checked in, and ``--check`` (part of `make lint`) fails
when it is stale. One file with no dependencies: copy it into a web app, or import it.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "libs")]

from services.gateway import openapi  # noqa: E402
from services.gateway.routes import bindings  # noqa: E402

OUT = ROOT / "clients" / "typescript" / "jobs.ts"

#: Schema names in the document -> TypeScript names (the package prefix dropped).
_RENAMES = {"google.rpc.Status": "RpcStatus", "google.protobuf.Any": "AnyDetail"}

_RUNTIME = """
/** A call the gateway refused: the gRPC status it carries, and Retry-After on 429. */
export class JobsApiError extends Error {
  constructor(
    readonly httpStatus: number,
    readonly status: RpcStatus,
    readonly retryAfterSeconds: number | null,
  ) {
    super(status.message || `HTTP ${httpStatus}`);
    this.name = "JobsApiError";
  }
}

export type TokenSource = string | (() => string | Promise<string>);

export interface WatchOptions {
  /** Resume after this sequence (0: from the start). */
  afterSequence?: number;
  /** Each event once, in order, across reconnects. */
  onEvent: (event: JobEvent) => void;
  /** After the terminal event (or at once, for a job already over). */
  onEnd?: () => void;
  /** A failure that stopped the watch (e.g. the job is gone, or access was revoked). */
  onError?: (error: unknown) => void;
}

export class JobsClient {
  constructor(
    private readonly baseUrl: string,
    private readonly token: TokenSource,
  ) {}

  private async bearer(): Promise<string> {
    return typeof this.token === "string" ? this.token : await this.token();
  }

  private async call<T>(method: string, path: string, query?: object, body?: unknown): Promise<T> {
    const url = new URL(this.baseUrl + path, globalThis.location?.href ?? "http://localhost");
    for (const [key, value] of Object.entries(query ?? {})) {
      if (value !== undefined && value !== null && value !== "") {
        url.searchParams.set(key, String(value));
      }
    }
    const headers: Record<string, string> = { Authorization: `Bearer ${await this.bearer()}` };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    const document = text ? JSON.parse(text) : {};
    if (!response.ok) {
      const retryAfter = response.headers.get("Retry-After");
      const seconds = retryAfter ? Number(retryAfter) : null;
      throw new JobsApiError(response.status, document as RpcStatus, seconds);
    }
    return document as T;
  }

  /**
   * Streams one artifact of a job (its result's `artifacts` name it): the Response of
   * GET /v1/jobs/{jobId}/artifacts/{name}, whose body is read as it arrives
   * (`response.body`, a ReadableStream), never buffered here. Its ETag is the sha256.
   */
  async downloadArtifact(request: { jobId: string; name: string }): Promise<Response> {
    const path = `/v1/jobs/${encodeURIComponent(request.jobId)}/artifacts/` +
      encodeURIComponent(request.name);
    const url = new URL(this.baseUrl + path, globalThis.location?.href ?? "http://localhost");
    const response = await fetch(url, {
      headers: { Authorization: `Bearer ${await this.bearer()}` },
    });
    if (!response.ok) {
      const text = await response.text();
      const retryAfter = response.headers.get("Retry-After");
      throw new JobsApiError(response.status, (text ? JSON.parse(text) : {}) as RpcStatus,
        retryAfter ? Number(retryAfter) : null);
    }
    return response;
  }

  /**
   * Stores a file for later jobs (bulk_import's `uploadId`): POST /v1/uploads with the
   * file as the body, sent as it is read when given a stream.
   */
  async createUpload(file: Blob | ArrayBuffer | ReadableStream<Uint8Array>,
    contentType = "application/x-ndjson"): Promise<Upload> {
    const url = new URL(this.baseUrl + "/v1/uploads", globalThis.location?.href ?? "http://localhost");
    const init: RequestInit & { duplex?: "half" } = {
      method: "POST",
      headers: { Authorization: `Bearer ${await this.bearer()}`, "Content-Type": contentType },
      body: file,
    };
    if (file instanceof ReadableStream) init.duplex = "half";
    const response = await fetch(url, init);
    const text = await response.text();
    const document = text ? JSON.parse(text) : {};
    if (!response.ok) {
      const retryAfter = response.headers.get("Retry-After");
      throw new JobsApiError(response.status, document as RpcStatus,
        retryAfter ? Number(retryAfter) : null);
    }
    return document as Upload;
  }

  /**
   * Follows a job's events over Server-Sent Events with a watch token, so the user's own
   * token never goes into a URL. The browser reconnects by itself with Last-Event-ID; a
   * stream that closes for good before the end (an expired watch token) is reopened with
   * a fresh token after the last sequence seen. Returns a function that stops watching.
   */
  watchJob(jobId: string, options: WatchOptions): () => void {
    let last = options.afterSequence ?? 0;
    let source: EventSource | null = null;
    let stopped = false;
    let failures = 0;
    const stop = () => {
      stopped = true;
      source?.close();
    };
    const open = async () => {
      if (stopped) return;
      let token: string;
      try {
        token = (await this.createWatchToken({ jobId })).token ?? "";
      } catch (error) {
        stop();
        options.onError?.(error);
        return;
      }
      const url = new URL(`${this.baseUrl}/v1/jobs/${encodeURIComponent(jobId)}/events`,
        globalThis.location?.href ?? "http://localhost");
      url.searchParams.set("access_token", token);
      url.searchParams.set("after_sequence", String(last));
      source = new EventSource(url);
      source.onmessage = (message) => {
        failures = 0;
        const event = JSON.parse(message.data) as JobEvent;
        const sequence = Number(event.sequence);
        if (sequence <= last) return;
        last = sequence;
        options.onEvent(event);
      };
      source.addEventListener("end", () => {
        stop();
        options.onEnd?.();
      });
      source.onerror = () => {
        if (stopped || source?.readyState !== EventSource.CLOSED) return;
        // Closed for good: 204 (nothing left), an expired token, or an error status.
        failures += 1;
        setTimeout(() => {
          if (stopped) return;
          this.getJob({ jobId }).then((job) => {
            const over = ["JOB_STATUS_SUCCEEDED", "JOB_STATUS_FAILED", "JOB_STATUS_CANCELLED"];
            if (job.status && over.includes(job.status) && failures > 1) {
              stop();
              options.onEnd?.();
            } else {
              void open();
            }
          }, (error) => {
            stop();
            options.onError?.(error);
          });
        }, Math.min(250 * 2 ** Math.min(failures, 4), 5000));
      };
    };
    void open();
    return stop;
  }
"""


def _ts_name(schema_name: str) -> str:
    if schema_name in _RENAMES:
        return _RENAMES[schema_name]
    return schema_name.rsplit(".", 1)[-1]


def _type(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        return _ts_name(schema["$ref"].removeprefix("#/components/schemas/"))
    kind = schema.get("type")
    if kind == "array":
        return f"Array<{_type(schema.get('items', {}))}>"
    if kind == "object":
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict) and extra:
            return f"Record<string, {_type(extra)}>"
        if "properties" in schema:
            fields = "; ".join(f'"{k}"?: {_type(v)}' for k, v in schema["properties"].items())
            return f"{{ {fields}; [key: string]: unknown }}"
        return "Record<string, unknown>"
    if kind == "string":
        return "string"
    if kind in ("integer", "number"):
        return "number"
    if kind == "boolean":
        return "boolean"
    return "unknown"


def _declaration(name: str, schema: dict[str, Any]) -> str:
    ts = _ts_name(name)
    if "enum" in schema:
        values = " | ".join(f'"{v}"' for v in schema["enum"])
        return f"/** {name} */\nexport type {ts} = {values};\n"
    if schema.get("type") == "object" and "properties" in schema:
        lines = [f"/** {schema.get('description') or name} */", f"export interface {ts} {{"]
        for field, field_schema in schema["properties"].items():
            key = field if re.fullmatch(r"[A-Za-z_]\w*", field) else f'"{field}"'
            lines.append(f"  {key}?: {_type(field_schema)};")
        if schema.get("additionalProperties"):
            lines.append("  [key: string]: unknown;")
        lines.append("}")
        return "\n".join(lines) + "\n"
    return f"/** {name} */\nexport type {ts} = {_type(schema)};\n"


def _method_name(operation_id: str) -> str:
    return operation_id[0].lower() + operation_id[1:]


def _methods(document: dict[str, Any]) -> list[str]:
    out = []
    for path, item in document["paths"].items():
        for verb, operation in item.items():
            content = operation["responses"].get("200", {}).get("content", {})
            body = operation.get("requestBody", {}).get("content", {})
            if "text/event-stream" in content or "*/*" in content or "*/*" in body:
                continue  # watchJob, downloadArtifact and createUpload: by hand above
            params = [p for p in operation["parameters"] if p["in"] in ("path", "query")]
            path_names = [p["name"] for p in params if p["in"] == "path"]
            query = [p for p in params if p["in"] == "query"]
            reply = _type(operation["responses"]["200"]["content"]["application/json"]["schema"])
            args = []
            if "requestBody" in operation:
                request = _type(operation["requestBody"]["content"]["application/json"]["schema"])
                required = "".join(f" & {{ {_camel(n)}: string }}" for n in path_names)
                args.append(f"request: {request}{required}")
                call_path = re.sub(
                    r"\{(\w+)\}",
                    lambda m: "${encodeURIComponent(request." + _camel(m.group(1)) + ")}",
                    path,
                )
                call = f'this.call<{reply}>("{verb.upper()}", `{call_path}`, undefined, request)'
            else:
                fields = [f"{_camel(n)}: string" for n in path_names]
                fields += [f"{p['name']}?: {_type(p['schema'])}" for p in query]
                if fields:
                    default = "" if path_names else " = {}"
                    args.append(f"request: {{ {'; '.join(fields)} }}{default}")
                call_path = re.sub(
                    r"\{(\w+)\}",
                    lambda m: "${encodeURIComponent(request." + _camel(m.group(1)) + ")}",
                    path,
                )
                query_arg = (
                    "{ " + ", ".join(f"{p['name']}: request.{p['name']}" for p in query) + " }"
                    if query
                    else "undefined"
                )
                call = f'this.call<{reply}>("{verb.upper()}", `{call_path}`, {query_arg})'
            out.append(
                f"  /** {verb.upper()} {path} ({operation['operationId']}) */\n"
                f"  {_method_name(operation['operationId'])}({', '.join(args)}): "
                f"Promise<{reply}> {{\n    return {call};\n  }}\n"
            )
    return out


def _camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(part.title() for part in rest)


def render() -> str:
    document = openapi.document(bindings())
    schemas = document["components"]["schemas"]
    parts = [
        "// Generated by scripts/gen_ts_client.py from the gateway's OpenAPI document.\n"
        "// Do not edit: run `make clients`. Types follow the proto3 JSON mapping: every\n"
        "// field optional (the gateway prints defaults; other servers may omit them),\n"
        "// 64-bit integers as strings, enums by name, timestamps as RFC 3339 strings.\n",
        *(_declaration(name, schemas[name]) for name in sorted(schemas)),
        _RUNTIME.lstrip("\n"),
        *_methods(document),
        "}\n",
    ]
    return "\n".join(parts)


def main() -> int:
    text = render()
    if "--check" in sys.argv[1:]:
        if not OUT.exists() or OUT.read_text(encoding="utf-8") != text:
            print("clients/typescript/jobs.ts is stale: run `make clients` and commit it")
            return 1
        print("TypeScript client is up to date")
        return 0
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
