// The query API the UI reads (see shared API.md): typed shapes and fetchers.

export interface MapNode {
  id: string;
  name: string;
  type: 'service' | 'database' | 'external' | 'messaging' | 'client' | string;
  system: string | null;
  requests: number;
  errors: number;
  faults: number;
  throttles: number;
  p50_ms: number;
  p95_ms: number;
  p99_ms: number;
  rate_per_s: number;
}

export interface MapEdge {
  source: string;
  target: string;
  type: string;
  requests: number;
  errors: number;
  faults: number;
  throttles: number;
  retries: number;
  p50_ms: number;
  p95_ms: number;
  p99_ms: number;
  rate_per_s: number;
  storm: boolean;
}

export interface ServiceMap {
  start_ms: number;
  end_ms: number;
  nodes: MapNode[];
  edges: MapEdge[];
}

export interface MapDetail {
  /** Per-bucket counts; `le_ms` null is the open last bucket. */
  latency: Array<{ le_ms: number | null; count: number }>;
  operations: Array<{ name: string; requests: number; errors: number; faults: number; p95_ms: number }>;
  sampled_traces: number;
}

export interface TraceSummary {
  trace_id: string;
  root_service: string;
  root_operation: string;
  start_us: number;
  duration_ms: number;
  span_count: number;
  error_count: number;
  services: string[];
  correlation_ids: string[];
  finding_kinds: string[];
  complete: boolean;
}

export interface SpanEvent {
  name: string;
  time_us: number;
  attributes: Record<string, unknown>;
}

export interface Span {
  span_id: string;
  parent_span_id: string | null;
  service: string;
  name: string;
  kind: string;
  start_us: number;
  duration_us: number;
  status: 'unset' | 'ok' | 'error' | string;
  status_message: string;
  attributes: Record<string, unknown>;
  events: SpanEvent[];
  links: Array<{ trace_id: string; span_id: string }>;
  resource?: Record<string, unknown>;
}

export interface Finding {
  id: string;
  kind: string;
  severity: 'info' | 'warning' | 'critical' | string;
  trace_id: string;
  service: string;
  operation: string;
  target: string;
  statement: string | null;
  span_ids: string[];
  count: number;
  total_duration_ms: number;
  max_duration_ms: number;
  start_us: number;
  message: string;
}

export interface FindingGroup {
  kind: string;
  service: string;
  target: string;
  statement: string | null;
  occurrences: number;
  traces: number;
  p95_ms: number;
  total_ms?: number;
  last_seen_us: number;
  example_trace_ids: string[];
}

export interface TraceDetail {
  summary: TraceSummary;
  spans: Span[];
  findings: Finding[];
  critical_path: Array<{ span_id: string; self_ms: number }>;
}

export class ApiError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

export type Params = Record<string, string | string[] | undefined | null>;

/** `path?query`, skipping empty values and repeating array values. */
export function url(path: string, params: Params = {}): string {
  const q = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === '') continue;
    for (const v of Array.isArray(value) ? value : [value]) if (v !== '') q.append(key, v);
  }
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

async function get<T>(path: string, params: Params = {}, signal?: AbortSignal): Promise<T> {
  const res = await fetch(url(path, params), { signal, headers: { accept: 'application/json' } });
  if (!res.ok) {
    let message = `${res.status} ${res.statusText}`;
    try {
      const body = await res.json();
      if (body && typeof body.error === 'string') message = body.error;
      else if (body && Array.isArray(body.errors) && body.errors[0]?.msg) message = body.errors[0].msg;
    } catch {
      /* not JSON */
    }
    throw new ApiError(res.status, message);
  }
  return (await res.json()) as T;
}

const enc = encodeURIComponent;

export const api = {
  serviceMap: (p: Params, signal?: AbortSignal) => get<ServiceMap>('/api/v1/service-map', p, signal),
  mapDetail: (p: Params, signal?: AbortSignal) => get<MapDetail>('/api/v1/service-map/detail', p, signal),
  traces: (p: Params, signal?: AbortSignal) =>
    get<{ traces: TraceSummary[] }>('/api/v1/traces', p, signal).then((r) => r.traces ?? []),
  trace: (id: string, signal?: AbortSignal) => get<TraceDetail>(`/api/v1/traces/${enc(id)}`, {}, signal),
  findings: (p: Params, signal?: AbortSignal) =>
    get<{ findings: Finding[] }>('/api/v1/findings', p, signal).then((r) => r.findings ?? []),
  findingGroups: (p: Params, signal?: AbortSignal) =>
    get<{ groups: FindingGroup[] }>('/api/v1/findings/groups', p, signal).then((r) => r.groups ?? []),
  services: (signal?: AbortSignal) =>
    get<{ data: string[] | null }>('/api/services', {}, signal).then((r) => (r.data ?? []).slice().sort()),
  operations: (service: string, signal?: AbortSignal) =>
    get<{ data: string[] | null }>(`/api/services/${enc(service)}/operations`, {}, signal).then((r) =>
      (r.data ?? []).slice().sort(),
    ),
};

export const LOOKBACKS = ['15m', '1h', '6h', '24h', '7d'] as const;
export const FINDING_KINDS = ['n_plus_one', 'slow_db', 'slow_call', 'retry_storm', 'sequential_calls'];
