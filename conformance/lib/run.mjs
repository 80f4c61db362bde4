// Vendored from the team's conformance harness (shared/tools/conformance/lib, written for this
// project, not third-party code); scripts/run_conformance.sh runs it with the Node 22 that
// conformance/package.json pins.
// Runs @modelcontextprotocol/conformance server scenarios one by one against a URL,
// then prints a per-scenario report and the closing line
//   conformance: N passed, M failed
// (N/M count scenarios; a scenario fails when any of its checks has status FAILURE).
// Invoked by ../run.sh with Node >= 22 (the conformance CLI needs fs.globSync).
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

process.stdout.on('error', (e) => { if (e.code === 'EPIPE') process.exit(0); throw e; });
const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..');
const CLI = path.join(ROOT, 'node_modules/@modelcontextprotocol/conformance/dist/index.js');

// Scenario sets -------------------------------------------------------------
// generic: call nothing by a fixed name (subscribe/unsubscribe excepted, see below);
//          the second field is the server capability the scenario needs.
const GENERIC = [
  ['server-initialize', null],
  ['ping', null],
  ['tools-list', 'tools'],
  ['resources-list', 'resources'],
  ['prompts-list', 'prompts'],
  ['logging-set-level', 'logging'],
  ['resources-subscribe', 'resources.subscribe'], // fixed URI test://watched-resource: passes unless
  ['resources-unsubscribe', 'resources.subscribe'], //   the server rejects subscribing to an unknown URI
  ['server-sse-multiple-streams', null], // streamable-http only
  ['dns-rebinding-protection', null], // streamable-http only, localhost URL, no auth
];
// fixtures: need the fixed test_* tools, test:// resources and test_* prompts.
const FIXTURES = [
  'completion-complete', // completes argument arg1 of prompt test_prompt_with_arguments
  'tools-call-simple-text', 'tools-call-image', 'tools-call-audio', 'tools-call-embedded-resource',
  'tools-call-mixed-content', 'tools-call-with-logging', 'tools-call-error', 'tools-call-with-progress',
  'tools-call-sampling', 'tools-call-elicitation', 'elicitation-sep1034-defaults', 'elicitation-sep1330-enums',
  'resources-read-text', 'resources-read-binary', 'resources-templates-read', 'prompts-get-simple',
  'prompts-get-with-args', 'prompts-get-embedded-resource', 'prompts-get-with-image',
  // "pending" upstream (not in the default active suite):
  'json-schema-2020-12', 'server-sse-polling',
];
const STREAMABLE_ONLY = new Set(['server-sse-multiple-streams', 'dns-rebinding-protection', 'server-sse-polling']);
const CAP_OF = Object.fromEntries(GENERIC);
for (const s of FIXTURES) CAP_OF[s] = null;
Object.assign(CAP_OF, {
  'completion-complete': 'completions',
  'tools-call-with-logging': 'logging',
  'resources-read-text': 'resources', 'resources-read-binary': 'resources', 'resources-templates-read': 'resources',
  'prompts-get-simple': 'prompts', 'prompts-get-with-args': 'prompts', 'prompts-get-embedded-resource': 'prompts',
  'prompts-get-with-image': 'prompts',
});

// Arguments --------------------------------------------------------------------
function usage(code) {
  console.log(`usage: run.sh [options] URL [streamable-http|http|sse]

  URL                      MCP endpoint (streamable HTTP: e.g. http://127.0.0.1:3001/mcp;
                           sse: the GET event-stream URL, e.g. http://127.0.0.1:3001/sse)
  transport                streamable-http (default; 'http' is an alias) or sse
options:
  -H, --header 'K: V'      extra HTTP header on every request (repeatable), e.g. 'Authorization: Bearer X'
  --set generic|fixtures|all   scenario set (default generic)
  -s, --scenarios 'a b'    run exactly these scenarios (space/comma separated)
  --skip 'a b'             drop these scenarios
  --no-cap-skip            run capability-gated scenarios even if the server does not advertise the capability
  --timeout SEC            per-scenario time limit (default 60)
  -o, --out DIR            keep checks.json files here (default: a fresh temp dir)
  -v, --verbose            print every check, not only failures/warnings
env: CONFORMANCE_HEADERS='K: V' (newline-separated) adds headers too.`);
  process.exit(code);
}

const argv = process.argv.slice(2);
const opt = { headers: {}, set: 'generic', scenarios: null, skip: new Set(), capSkip: true, timeout: 60, out: null, verbose: false };
const pos = [];
function addHeader(h) {
  const i = h.indexOf(':');
  if (i <= 0) { console.error(`bad header (want 'Name: value'): ${h}`); process.exit(2); }
  opt.headers[h.slice(0, i).trim()] = h.slice(i + 1).trim();
}
for (const h of (process.env.CONFORMANCE_HEADERS || '').split('\n')) if (h.trim()) addHeader(h);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  const val = () => { if (i + 1 >= argv.length) usage(2); return argv[++i]; };
  if (a === '-h' || a === '--help') usage(0);
  else if (a === '-H' || a === '--header') addHeader(val());
  else if (a === '--set') opt.set = val();
  else if (a === '-s' || a === '--scenarios') opt.scenarios = val().split(/[\s,]+/).filter(Boolean);
  else if (a === '--skip') for (const s of val().split(/[\s,]+/).filter(Boolean)) opt.skip.add(s);
  else if (a === '--no-cap-skip') opt.capSkip = false;
  else if (a === '--timeout') opt.timeout = Number(val());
  else if (a === '-o' || a === '--out') opt.out = val();
  else if (a === '-v' || a === '--verbose') opt.verbose = true;
  else if (a.startsWith('-')) { console.error(`unknown option ${a}`); usage(2); }
  else pos.push(a);
}
if (pos.length < 1 || pos.length > 2) usage(2);
const url = pos[0];
let transport = (pos[1] || 'streamable-http').toLowerCase();
if (transport === 'http' || transport === 'streamablehttp' || transport === 'streamable_http') transport = 'streamable-http';
if (!['streamable-http', 'sse'].includes(transport)) { console.error(`unknown transport ${transport}`); usage(2); }
let target;
try { target = new URL(url); } catch { console.error(`bad URL ${url}`); process.exit(2); }
const hasHeaders = Object.keys(opt.headers).length > 0;

// Scenario list -----------------------------------------------------------------
let scenarios;
if (opt.scenarios) scenarios = opt.scenarios;
else if (opt.set === 'generic') scenarios = GENERIC.map(([s]) => s);
else if (opt.set === 'fixtures') scenarios = FIXTURES;
else if (opt.set === 'all') scenarios = [...GENERIC.map(([s]) => s), ...FIXTURES];
else { console.error(`unknown set ${opt.set}`); usage(2); }
const KNOWN = new Set([...GENERIC.map(([s]) => s), ...FIXTURES]);
const unknown = scenarios.filter((s) => !KNOWN.has(s));
if (unknown.length) {
  console.error(`unknown scenario(s): ${unknown.join(', ')}\nknown: ${[...KNOWN].join(' ')}`);
  process.exit(2);
}
const skipped = []; // [scenario, reason]
const explicit = !!opt.scenarios;
scenarios = scenarios.filter((s) => {
  if (opt.skip.has(s)) { skipped.push([s, '--skip']); return false; }
  if (explicit) return true;
  if (transport === 'sse' && STREAMABLE_ONLY.has(s)) { skipped.push([s, 'streamable-http only']); return false; }
  if (s === 'dns-rebinding-protection') {
    const h = target.hostname;
    if (!['localhost', '127.0.0.1', '[::1]', '::1'].includes(h)) { skipped.push([s, 'needs a localhost URL']); return false; }
    if (hasHeaders) { skipped.push([s, 'its raw requests cannot carry -H headers (scenario is for unauthenticated servers)']); return false; }
  }
  return true;
});

// Node invocation shared by the probe and the scenarios ------------------------------
const env = { ...process.env, CONFORMANCE_EXTRA_HEADERS: JSON.stringify(opt.headers), CONFORMANCE_TARGET_ORIGIN: target.origin };
const preload = ['--import', path.join(HERE, 'inject-headers.mjs')];
if (transport === 'sse') preload.push('--import', path.join(HERE, 'sse-register.mjs'));

function runNode(args, timeoutSec) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...preload, ...args], { env, cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    let timedOut = false;
    const t = setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, timeoutSec * 1000);
    child.on('close', (code) => { clearTimeout(t); resolve({ code, out, timedOut }); });
  });
}

// Capability probe: initialize once and read the server's capabilities.
async function probe() {
  const r = await runNode([path.join(HERE, 'probe.mjs'), url, transport], Math.min(opt.timeout, 30));
  const line = r.out.split('\n').find((l) => l.startsWith('PROBE '));
  if (!line) return { ok: false, error: r.timedOut ? 'timed out' : r.out.trim().split('\n').slice(-3).join(' | ') };
  return { ok: true, ...JSON.parse(line.slice(6)) };
}
function hasCap(caps, cap) {
  let cur = caps;
  for (const part of cap.split('.')) {
    if (cur == null || typeof cur !== 'object' || !(part in cur) || cur[part] === false || cur[part] == null) return false;
    cur = cur[part];
  }
  return true;
}

const strip = (s) => String(s ?? '').replace(/\x1b\[[0-9;]*m/g, '');
const outDir = opt.out ? path.resolve(opt.out) : mkdtempSync(path.join(tmpdir(), 'conformance-'));
mkdirSync(outDir, { recursive: true });

console.log(`conformance 0.1.16 against ${url} (${transport})${hasHeaders ? ` with headers: ${Object.keys(opt.headers).join(', ')}` : ''}`);
const p = await probe();
if (p.ok) {
  console.log(`server: ${p.serverInfo?.name ?? '?'} ${p.serverInfo?.version ?? ''}  protocol ${p.protocolVersion ?? '?'}  capabilities: ${JSON.stringify(p.capabilities)}`);
  if (opt.capSkip && !explicit) {
    scenarios = scenarios.filter((s) => {
      const cap = CAP_OF[s];
      if (cap && !hasCap(p.capabilities, cap)) { skipped.push([s, `server does not advertise '${cap}'`]); return false; }
      return true;
    });
  }
} else {
  console.log(`probe: could not initialize (${p.error}); running every selected scenario anyway`);
}

const results = [];
for (const s of scenarios) {
  const args = [CLI, 'server', '--url', url, '--scenario', s, '-o', outDir];
  const r = await runNode(args, opt.timeout);
  const dirs = existsSync(outDir) ? readdirSync(outDir).filter((d) => d.startsWith(`server-${s}-`)).sort() : [];
  let checks = null;
  if (dirs.length) {
    try { checks = JSON.parse(readFileSync(path.join(outDir, dirs[dirs.length - 1], 'checks.json'), 'utf8')); } catch {}
  }
  if (!checks) {
    const why = r.timedOut ? `timed out after ${opt.timeout}s` : `no checks.json (exit ${r.code}): ${strip(r.out).trim().split('\n').slice(-3).join(' | ')}`;
    checks = [{ id: s, status: 'FAILURE', description: 'scenario did not finish', errorMessage: why }];
  }
  const n = (st) => checks.filter((c) => c.status === st).length;
  const res = { scenario: s, checks, pass: n('SUCCESS'), fail: n('FAILURE'), warn: n('WARNING') };
  results.push(res);
  const mark = res.fail ? 'FAIL' : 'PASS';
  console.log(`${mark}  ${s}  (${res.pass} ok, ${res.fail} failed${res.warn ? `, ${res.warn} warnings` : ''})`);
  for (const c of checks) {
    if (c.status === 'FAILURE' || c.status === 'WARNING' || (opt.verbose && c.status === 'SUCCESS')) {
      console.log(`      ${c.status.padEnd(7)} ${c.id}: ${strip(c.errorMessage || c.description)}`);
    }
  }
}

for (const [s, why] of skipped) console.log(`SKIP  ${s}  (${why})`);
const passed = results.filter((r) => r.fail === 0).length;
const failed = results.length - passed;
const ck = results.reduce((a, r) => ({ p: a.p + r.pass, f: a.f + r.fail, w: a.w + r.warn }), { p: 0, f: 0, w: 0 });
console.log(`checks: ${ck.p} ok, ${ck.f} failed, ${ck.w} warnings; ${skipped.length} scenarios skipped; checks.json under ${outDir}`);
console.log(`conformance: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
