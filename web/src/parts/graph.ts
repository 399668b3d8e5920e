// The service map's drawing: Cytoscape elements from the API's nodes and
// edges (health shares, labels, storm and failing classes) and the stylesheet
// that gives each kind of node its shape. Edge labels show on retry storms,
// on `.lit` edges (the selected, focused or hovered node's) and on every edge
// with `.all-labels`, lying along it on one line.
import type cytoscape from 'cytoscape';
import type { MapEdge, MapNode, ServiceMap } from '../api';
import * as fmt from '../format';
import { HEALTH } from './panel';

const CACHE_SYSTEMS = new Set(['redis', 'memcached', 'valkey', 'elasticache']);

export type NodeKind = 'service' | 'database' | 'cache' | 'external' | 'messaging' | 'client';

export function nodeKind(n: MapNode): NodeKind {
  if (n.type === 'database' && n.system && CACHE_SYSTEMS.has(n.system.toLowerCase())) return 'cache';
  if (['service', 'database', 'external', 'messaging', 'client'].includes(n.type)) return n.type as NodeKind;
  return 'external';
}

export const KIND_STYLE: Record<NodeKind, { shape: cytoscape.Css.NodeShape; fill: string; border: string; label: string }> = {
  service: { shape: 'ellipse', fill: '#ffffff', border: '#868e96', label: 'Service' },
  database: { shape: 'barrel', fill: '#f1f3f5', border: '#495057', label: 'Database' },
  cache: { shape: 'round-diamond', fill: '#fff5f5', border: '#c2255c', label: 'Cache' },
  external: { shape: 'round-hexagon', fill: '#f3f0ff', border: '#5f3dc4', label: 'External' },
  messaging: { shape: 'round-tag', fill: '#e6fcf5', border: '#087f5b', label: 'Messaging' },
  client: { shape: 'round-rectangle', fill: '#f8f9fa', border: '#343a40', label: 'Client' },
};

function shares(x: { requests: number; errors: number; faults: number; throttles: number }) {
  const total = x.requests;
  if (!total) return { ok: 0, err: 0, fault: 0, thr: 0, none: 100 };
  const p = (n: number) => (100 * n) / total;
  const err = p(x.errors), fault = p(x.faults), thr = p(x.throttles);
  return { ok: Math.max(0, 100 - err - fault - thr), err, fault, thr, none: 0 };
}

function errorShare(e: { requests: number; errors: number; faults: number; throttles: number }): number {
  return e.requests ? (e.errors + e.faults + e.throttles) / e.requests : 0;
}

export function edgeId(e: { source: string; target: string }): string {
  return `${e.source}\u2192${e.target}`;
}

function edgeLabel(e: MapEdge): string {
  const err = fmt.percent(e.errors + e.faults + e.throttles, e.requests);
  const first = `${fmt.rate(e.rate_per_s)} · p95 ${fmt.ms(e.p95_ms)}`;
  return e.storm ? `⚠ RETRY STORM\n${first}\n${err} err · ${fmt.count(e.retries)} retries` : `${first}\n${err} err`;
}

/** The label on one line, to lie along the edge when every edge is labelled. */
function edgeLine(e: MapEdge): string {
  return `${e.storm ? '⚠ storm · ' : ''}${fmt.rate(e.rate_per_s)} · p95 ${fmt.ms(e.p95_ms)} · ${fmt.percent(e.errors + e.faults + e.throttles, e.requests)} err`;
}

export function elements(map: ServiceMap): cytoscape.ElementDefinition[] {
  const ids = new Set(map.nodes.map((n) => n.id));
  const nodes = map.nodes.map((n) => {
    const kind = nodeKind(n);
    return { group: 'nodes' as const, data: { id: n.id, label: n.name, kind, ...shares(n) }, classes: kind };
  });
  const edges = map.edges
    .filter((e) => ids.has(e.source) && ids.has(e.target))
    .map((e) => ({
      group: 'edges' as const,
      data: {
        id: edgeId(e),
        source: e.source,
        target: e.target,
        label: edgeLabel(e),
        line: edgeLine(e),
        width: 1.5 + Math.min(5, Math.log10(1 + e.requests)),
        bad: errorShare(e) >= 0.05 ? 1 : 0,
      },
      classes: e.storm ? 'storm' : errorShare(e) >= 0.05 ? 'failing' : '',
    }));
  return [...nodes, ...edges];
}

const num = (key: string) => (ele: cytoscape.NodeSingular) => Number(ele.data(key)) || 0;

export const STYLE: cytoscape.StylesheetJson = [
  {
    selector: 'node',
    style: {
      width: 54,
      height: 54,
      shape: (ele: cytoscape.NodeSingular) => KIND_STYLE[ele.data('kind') as NodeKind].shape,
      'background-color': (ele: cytoscape.NodeSingular) => KIND_STYLE[ele.data('kind') as NodeKind].fill,
      'border-width': 2,
      'border-color': (ele: cytoscape.NodeSingular) => KIND_STYLE[ele.data('kind') as NodeKind].border,
      label: 'data(label)',
      'font-family': 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif',
      'font-size': 11,
      color: '#212529',
      'text-valign': 'bottom',
      'text-margin-y': 5,
      'text-wrap': 'ellipsis',
      'text-max-width': '130px',
      'text-background-color': '#ffffff',
      'text-background-opacity': 0.8,
      'text-background-padding': '1px',
      'pie-size': '74%',
      'pie-hole': '52%',
      'pie-1-background-color': HEALTH.ok,
      'pie-1-background-size': num('ok'),
      'pie-2-background-color': HEALTH.error,
      'pie-2-background-size': num('err'),
      'pie-3-background-color': HEALTH.fault,
      'pie-3-background-size': num('fault'),
      'pie-4-background-color': HEALTH.throttle,
      'pie-4-background-size': num('thr'),
      'pie-5-background-color': HEALTH.none,
      'pie-5-background-size': num('none'),
    } as cytoscape.Css.Node,
  },
  { selector: 'node.database', style: { width: 48, height: 56 } },
  { selector: 'node.cache', style: { width: 60, height: 60 } },
  { selector: 'node.external', style: { width: 60, height: 56 } },
  { selector: 'node.client', style: { width: 50, height: 44 } },
  {
    selector: 'edge',
    style: {
      width: 'data(width)',
      'curve-style': 'bezier',
      'line-color': '#adb5bd',
      'target-arrow-color': '#adb5bd',
      'target-arrow-shape': 'triangle',
      'arrow-scale': 0.9,
      'font-size': 9,
      'font-family': 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif',
      color: '#495057',
      'text-wrap': 'wrap',
      'text-background-color': '#ffffff',
      'text-background-opacity': 0.85,
      'text-background-padding': '2px',
      'min-zoomed-font-size': 7,
    } as cytoscape.Css.Edge,
  },
  { selector: 'edge.failing', style: { 'line-color': '#ffa8a8', 'target-arrow-color': '#ff8787' } },
  { selector: 'edge.all-labels', style: { label: 'data(line)', 'font-size': 8, 'text-rotation': 'autorotate', 'text-margin-y': -7 } as cytoscape.Css.Edge },
  { selector: 'edge.lit, edge:selected, edge.storm', style: { label: 'data(label)', 'font-size': 9, 'text-rotation': 'none', 'text-margin-y': 0, 'z-index': 15 } as cytoscape.Css.Edge },
  // Above the nodes, so a label whose midpoint falls on a node stays readable.
  { selector: 'edge.lit, edge:selected', style: { 'z-compound-depth': 'top' } as cytoscape.Css.Edge },
  {
    selector: 'edge.storm',
    style: {
      width: 5,
      'line-color': '#e03131',
      'target-arrow-color': '#e03131',
      'line-style': 'dashed',
      'line-dash-pattern': [10, 6],
      color: '#c92a2a',
      'font-weight': 'bold',
      'z-index': 10,
    } as cytoscape.Css.Edge,
  },
  { selector: '.dimmed', style: { opacity: 0.22 } },
  { selector: 'node.match', style: { 'border-width': 4, 'border-color': '#1c7ed6' } },
  { selector: 'node.focus', style: { 'border-width': 4, 'border-color': '#1c7ed6', 'font-weight': 'bold' } },
  { selector: 'node:selected', style: { 'border-width': 5, 'border-color': '#1971c2', 'overlay-opacity': 0 } },
  { selector: 'edge:selected', style: { 'line-color': '#1971c2', 'target-arrow-color': '#1971c2', 'z-index': 20 } },
  { selector: 'edge.storm:selected', style: { 'line-color': '#a61e4d', 'target-arrow-color': '#a61e4d' } },
];
