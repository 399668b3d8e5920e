// Numbers, durations and times as people read them.

export function ms(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '–';
  if (value >= 60_000) return `${(value / 60_000).toFixed(1)} min`;
  if (value >= 1000) return `${(value / 1000).toFixed(value >= 10_000 ? 1 : 2)} s`;
  if (value >= 100) return `${Math.round(value)} ms`;
  if (value >= 10) return `${value.toFixed(1)} ms`;
  if (value >= 1) return `${value.toFixed(2)} ms`;
  if (value > 0) return `${Math.round(value * 1000)} µs`;
  return '0 ms';
}

export function us(value: number): string {
  return ms(value / 1000);
}

export function count(value: number): string {
  if (value >= 1e6) return `${(value / 1e6).toFixed(1)}M`;
  if (value >= 1e4) return `${(value / 1e3).toFixed(1)}k`;
  return value.toLocaleString('en-US');
}

export function rate(perSecond: number): string {
  if (perSecond >= 100) return `${Math.round(perSecond)}/s`;
  if (perSecond >= 1) return `${perSecond.toFixed(1)}/s`;
  if (perSecond >= 1 / 60) return `${(perSecond * 60).toFixed(1)}/min`;
  if (perSecond > 0) return `${(perSecond * 3600).toFixed(1)}/h`;
  return '0/s';
}

export function percent(part: number, whole: number): string {
  if (!whole) return '0%';
  const p = (100 * part) / whole;
  if (p === 0) return '0%';
  if (p < 0.1) return '<0.1%';
  return `${p < 10 ? p.toFixed(1) : Math.round(p)}%`;
}

/** Local date and time of a unix microsecond timestamp. */
export function time(unixUs: number): string {
  const d = new Date(unixUs / 1000);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** "3 min ago" for a unix microsecond timestamp. */
export function ago(unixUs: number, nowMs = Date.now()): string {
  const s = Math.max(0, (nowMs - unixUs / 1000) / 1000);
  if (s < 60) return `${Math.round(s)} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${(s / 3600).toFixed(1)} h ago`;
  return `${(s / 86400).toFixed(1)} d ago`;
}

/** Attribute values keep their JSON type; strings show as they are. */
export function value(v: unknown): string {
  if (typeof v === 'string') return v;
  return JSON.stringify(v);
}

const PALETTE = [
  '#4e79a7', '#f28e2b', '#59a14f', '#b07aa1', '#76b7b2', '#edc948',
  '#9c755f', '#6b6ecf', '#5f9ed1', '#8cd17d', '#d4a6c8', '#86bcb6',
  '#a0cbe8', '#ffbe7d', '#bab0ac', '#499894',
];

/** A stable colour per service name. */
export function serviceColor(service: string): string {
  let hash = 2166136261;
  for (let i = 0; i < service.length; i++) {
    hash ^= service.charCodeAt(i);
    hash = Math.imul(hash, 16777619);
  }
  return PALETTE[(hash >>> 0) % PALETTE.length]!;
}

export const KIND_LABEL: Record<string, string> = {
  n_plus_one: 'N+1',
  slow_db: 'slow DB',
  slow_call: 'slow call',
  retry_storm: 'retries',
  sequential_calls: 'sequential',
};

export function kindLabel(kind: string): string {
  return KIND_LABEL[kind] ?? kind.replace(/_/g, ' ');
}
