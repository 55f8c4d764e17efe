// tests/image/manifests.cjs -- checks deploy/kubernetes and
// deploy/kubernetes/postgres (run by test_manifests).
//
// Usage: node manifests.cjs NODE_MODULES_DIR BINARY DOCKERFILE MANIFEST_DIR...
//
// For each MANIFEST_DIR (its check names start with the folder's name):
// 1. Every object in every *.yaml of MANIFEST_DIR (but kustomization.yaml)
//    validates against the Kubernetes API schemas of the npm package
//    kubernetes-models (types, required fields, enums, formats).
// 2. No field is unknown to the API: the schemas do not reject those (a typo
//    like "readinessProbes" would pass them and be dropped by a lenient
//    apiserver), so each object is walked against the field lists of the
//    package's type declarations.
// 3. The manifests agree with the binary and the image: probe paths, the
//    port (from `BINARY -help`), the data directory and volume (the image's
//    DISTRIBUERAD_DATA_DIR), the user, the environment names, the Secret.
//    A folder with a StatefulSet is the one-process server on a volume; one
//    with a Deployment is replicas on PostgreSQL: several of them, a rolling
//    update that never drops below the replica count, the database URL from
//    a required Secret, no data volume, a PodDisruptionBudget that lets one
//    pod go at a time.
// Prints one line per check and "manifests: N passed, M failed".
"use strict";
const fs = require("fs");
const path = require("path");
const { execFileSync } = require("child_process");
const { createRequire } = require("module");

const [nodeModules, binary, dockerfile, ...dirs] = process.argv.slice(2);
let dir = null;
let prefix = "";
const need = createRequire(path.join(nodeModules, "noop.js"));
const YAML = need("yaml");
let passed = 0;
let failed = 0;
let skipped = 0;

function check(name, ok, detail) {
  name = prefix + name;
  if (ok) {
    passed++;
    console.log(`ok   ${name}`);
  } else {
    failed++;
    console.log(`FAIL ${name}${detail ? ` -- ${detail}` : ""}`);
  }
}
function skip(name, why) {
  name = prefix + name;
  skipped++;
  console.log(`SKIP ${name} -- ${why}`);
}

// ---- strict fields from the type declarations ------------------------------

const declCache = new Map();

// The top-level properties of the interface in a .d.ts file, each with the
// .d.ts file of its element type when that is another interface, or null
// when the file holds no interface (a type alias such as IntOrString).
function declFields(file) {
  if (declCache.has(file)) return declCache.get(file);
  let result = null;
  const text = fs.existsSync(file) ? fs.readFileSync(file, "utf8") : "";
  const imports = new Map();
  for (const m of text.matchAll(/^import \{ (\w+) \} from "([^"]+)";$/gm)) {
    const spec = m[2];
    const target = spec.startsWith(".")
      ? path.resolve(path.dirname(file), spec + ".d.ts")
      : path.join(nodeModules, spec + ".d.ts");
    imports.set(m[1], target);
  }
  const start = text.search(/^export interface \w+[^{]*\{$/m);
  if (start >= 0) {
    result = new Map();
    const body = text.slice(start).split("\n");
    for (let i = 1; i < body.length && body[i] !== "}"; i++) {
      const m = body[i].match(/^ {4}"([^"]+)"\??: (.*?);?$/);
      if (!m) continue;
      const elem = m[2].replace(/^Array<(.*)>$/, "$1");
      result.set(m[1], imports.get(elem) || null);
    }
  }
  declCache.set(file, result);
  return result;
}

// Lists every key of obj (recursively) that its type does not declare.
function unknownFields(obj, file, where, out) {
  const fields = declFields(file);
  if (!fields || obj === null || typeof obj !== "object") return out;
  const items = Array.isArray(obj) ? obj : [obj];
  items.forEach((item, i) => {
    const at = Array.isArray(obj) ? `${where}[${i}]` : where;
    if (item === null || typeof item !== "object") return;
    for (const [key, value] of Object.entries(item)) {
      if (!fields.has(key)) out.push(`${at}.${key}`);
      else if (fields.get(key)) unknownFields(value, fields.get(key), `${at}.${key}`, out);
    }
  });
  return out;
}

// ---- the binary's and the image's defaults ---------------------------------

// {flag: {def, env}} from the -help text: "  -port int" then
// "        ... (default 3333; env DISTRIBUERAD_PORT)".
function helpFlags() {
  const text = execFileSync(binary, ["-help"], { encoding: "utf8" });
  const flags = {};
  let name = null;
  for (const line of text.split("\n")) {
    const f = line.match(/^ {2}-([\w-]+)/);
    if (f) name = f[1];
    const d = line.match(/\(default (.*?); env (\w+)\)\s*$/);
    if (d && name) flags[name] = { def: d[1], env: d[2] };
  }
  return flags;
}

// ENV, USER, EXPOSE, VOLUME and WORKDIR of the Dockerfile's last stage.
function imageConfig() {
  const lines = fs.readFileSync(dockerfile, "utf8").replace(/\\\n/g, " ").split("\n");
  const cfg = { env: {}, user: null, expose: [], volumes: [], workdir: "/" };
  for (const line of lines) {
    const m = line.match(/^\s*(\w+)\s+(.*)$/);
    if (!m) continue;
    const op = m[1].toUpperCase();
    const arg = m[2].trim();
    if (op === "FROM") Object.assign(cfg, { env: {}, user: null, expose: [], volumes: [], workdir: "/" });
    if (op === "ENV") for (const kv of arg.match(/\S+=\S+/g) || []) cfg.env[kv.split("=")[0]] = kv.slice(kv.indexOf("=") + 1);
    if (op === "USER") cfg.user = arg;
    if (op === "EXPOSE") cfg.expose.push(...arg.split(/\s+/).map((p) => p.replace(/\/tcp$/, "")));
    if (op === "VOLUME") cfg.volumes.push(...(arg.startsWith("[") ? JSON.parse(arg) : arg.split(/\s+/)));
    if (op === "WORKDIR") cfg.workdir = path.posix.resolve(cfg.workdir, arg);
  }
  return cfg;
}

// ---- the checks ----------------------------------------------------------------

function loadObjects() {
  const objects = [];
  for (const file of fs.readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).sort()) {
    if (file === "kustomization.yaml") continue;
    for (const doc of YAML.parseAllDocuments(fs.readFileSync(path.join(dir, file), "utf8"))) {
      if (doc.errors.length) check(`${file}: YAML parses`, false, doc.errors[0].message);
      const obj = doc.toJS();
      if (obj) objects.push({ file, obj });
    }
  }
  return objects;
}

function validateSchemas(objects) {
  for (const { file, obj } of objects) {
    const name = `${file}: ${obj.kind} ${obj.metadata && obj.metadata.name}`;
    const base = path.join(nodeModules, "kubernetes-models", obj.apiVersion || "", `${obj.kind}.d.ts`);
    let Model;
    try {
      Model = need(`kubernetes-models/${obj.apiVersion}`)[obj.kind];
    } catch (e) {
      Model = undefined;
    }
    if (!Model) {
      check(`${name}: known apiVersion and kind`, false, `${obj.apiVersion} ${obj.kind}`);
      continue;
    }
    let err = null;
    try {
      new Model(obj).validate();
    } catch (e) {
      err = e.message;
    }
    check(`${name}: valid against the Kubernetes schema`, !err, err);
    const unknown = unknownFields(obj, base, obj.kind, []);
    check(`${name}: no unknown fields`, unknown.length === 0, unknown.join(", "));
  }
}

function byKind(objects, kind) {
  return objects.filter((o) => o.obj.kind === kind).map((o) => o.obj);
}

function sameLabels(selector, labels) {
  return Object.entries(selector || {}).every(([k, v]) => labels && labels[k] === v);
}

// The port a probe or a Service's targetPort names, as a number.
function portNumber(port, container) {
  if (typeof port === "number") return port;
  const p = (container.ports || []).find((q) => q.name === port);
  return p ? p.containerPort : NaN;
}

// The checks every workload shares: the port, the probes, the user and its
// lockdown, the environment names, the optional auth token.
function checkPod(w, svc, secrets, flags, image) {
  const pod = w.spec.template.spec;
  const c = pod.containers[0];
  const env = Object.fromEntries((c.env || []).map((e) => [e.name, e]));
  const envValue = (flag) => (env[flags[flag].env] && env[flags[flag].env].value);

  check(`${w.kind} selector matches its pod labels`,
    sameLabels(w.spec.selector.matchLabels, w.spec.template.metadata.labels));
  check("Service selector matches the pod labels", sameLabels(svc.spec.selector, w.spec.template.metadata.labels));

  // Port: the binary's default (or the DISTRIBUERAD_PORT the manifest sets),
  // also what the image EXPOSEs.
  const port = Number(envValue("port") || flags.port.def);
  const http = (c.ports || []).find((p) => p.name === "http");
  check(`containerPort is the server's port ${port}`, http && http.containerPort === port,
    JSON.stringify(c.ports));
  check(`the image EXPOSEs ${port}`, image.expose.includes(String(port)), image.expose.join(" "));
  const target = svc.spec.ports.map((p) => portNumber(p.targetPort, c));
  check("Service targets the server's port", target.length > 0 && target.every((p) => p === port), target.join(" "));

  const probe = (name, p, wantPath) => {
    const g = p && p.httpGet;
    check(`${name} probe: GET ${wantPath} on port ${port}`,
      g && g.path === wantPath && portNumber(g.port, c) === port, JSON.stringify(p));
  };
  probe("liveness", c.livenessProbe, "/healthz");
  probe("readiness", c.readinessProbe, "/readyz");
  if (c.startupProbe) probe("startup", c.startupProbe, "/healthz");
  check("in-memory mode is off", !/^(true|1|t)$/i.test(envValue("in-memory") || flags["in-memory"].def));

  // Security: as the image's user, locked down.
  const psc = pod.securityContext || {};
  const csc = c.securityContext || {};
  const uid = Number((image.user || "").split(":")[0]);
  check("runAsNonRoot", psc.runAsNonRoot === true || csc.runAsNonRoot === true);
  check(`runAsUser is the image's user ${uid}`, (csc.runAsUser ?? psc.runAsUser) === uid && uid > 0);
  check("readOnlyRootFilesystem", csc.readOnlyRootFilesystem === true);
  check("allowPrivilegeEscalation false", csc.allowPrivilegeEscalation === false);
  check("capabilities drop ALL", ((csc.capabilities || {}).drop || []).includes("ALL"));
  check("seccomp RuntimeDefault",
    ((csc.seccompProfile || psc.seccompProfile) || {}).type === "RuntimeDefault");
  check("automountServiceAccountToken false", pod.automountServiceAccountToken === false);
  check("terminationGracePeriodSeconds covers the graceful stop (>= 10 s)",
    (pod.terminationGracePeriodSeconds ?? 30) >= 10);
  const res = c.resources || {};
  check("resource requests and a memory limit are set",
    res.requests && res.requests.cpu && res.requests.memory && res.limits && res.limits.memory);

  // Environment: every DISTRIBUERAD_* name is one the binary reads.
  const known = new Set(Object.values(flags).map((f) => f.env));
  for (const name of Object.keys(env).filter((n) => n.startsWith("DISTRIBUERAD_"))) {
    if (known.has(name)) check(`env ${name} is a flag of the binary`, true);
    else if (name === "DISTRIBUERAD_AUTH_TOKEN")
      skip(`env ${name} is a flag of the binary`, "the binary has no auth token flag yet; it ignores the variable");
    else check(`env ${name} is a flag of the binary`, false, "not in -help");
  }

  // The auth token: from a Secret, optional (shown in deploy/kubernetes's
  // secret.yaml, which a folder of its own may repeat).
  const ref = secretRef(env, "DISTRIBUERAD_AUTH_TOKEN");
  check("DISTRIBUERAD_AUTH_TOKEN comes from a Secret, optional", ref && ref.optional === true);
  check("an example Secret has that name and key", ref && hasSecretKey(secrets, ref),
    ref && `${ref.name}/${ref.key}`);
  return { pod, c, env, envValue };
}

function secretRef(env, name) {
  return env[name] && env[name].valueFrom && env[name].valueFrom.secretKeyRef;
}

function hasSecretKey(secrets, ref) {
  return secrets.some((s) => s.metadata.name === ref.name &&
    Object.keys({ ...(s.stringData || {}), ...(s.data || {}) }).includes(ref.key));
}

// The one-process server: a StatefulSet of one replica on a volume.
function checkStatefulSet(sts, svc, secrets, flags, image) {
  const { c, envValue } = checkPod(sts, svc, secrets, flags, image);
  check("one replica", sts.spec.replicas === 1, `replicas ${sts.spec.replicas}`);
  check("serviceName names the Service", sts.spec.serviceName === svc.metadata.name);

  // Data: the directory the server will use (manifest env, else the image's
  // ENV, else the binary's default from the working directory) is the mount
  // of the PersistentVolumeClaim, and a VOLUME of the image.
  const dataDir = path.posix.resolve(image.workdir,
    envValue("data-dir") || image.env[flags["data-dir"].env] || flags["data-dir"].def);
  const mount = (c.volumeMounts || []).find((m) => m.mountPath === dataDir);
  check(`a volume is mounted at the data directory ${dataDir}`, !!mount, JSON.stringify(c.volumeMounts));
  const claims = (sts.spec.volumeClaimTemplates || []).map((t) => t.metadata.name);
  check("the data volume is a PersistentVolumeClaim", mount && claims.includes(mount.name), claims.join(" "));
  const claim = (sts.spec.volumeClaimTemplates || []).find((t) => mount && t.metadata.name === mount.name);
  check("the data claim requests storage", claim && claim.spec.resources.requests.storage);
  check(`the image declares VOLUME ${dataDir}`, image.volumes.includes(dataDir), image.volumes.join(" "));
}

// Replicas on PostgreSQL: a Deployment, the URL from a Secret, a budget.
function checkDeployment(dep, svc, secrets, pdbs, flags, image) {
  const { c, env, envValue } = checkPod(dep, svc, secrets, flags, image);
  const replicas = dep.spec.replicas ?? 1;
  check("several replicas (3)", replicas === 3, `replicas ${replicas}`);
  const ru = (dep.spec.strategy || {}).rollingUpdate || {};
  check("rolling update: maxUnavailable 0, maxSurge 1",
    dep.spec.strategy && dep.spec.strategy.type === "RollingUpdate" && ru.maxUnavailable === 0 && ru.maxSurge === 1,
    JSON.stringify(dep.spec.strategy));
  check("-database-url is a flag of the binary, read from DISTRIBUERAD_DATABASE_URL",
    flags["database-url"] && flags["database-url"].env === "DISTRIBUERAD_DATABASE_URL");
  const ref = secretRef(env, "DISTRIBUERAD_DATABASE_URL");
  check("DISTRIBUERAD_DATABASE_URL comes from a Secret, required", ref && ref.optional !== true,
    JSON.stringify(env.DISTRIBUERAD_DATABASE_URL));
  check("secret.yaml has that Secret and key", ref && hasSecretKey(secrets, ref), ref && `${ref.name}/${ref.key}`);
  const example = ref && secrets.filter((s) => s.metadata.name === ref.name)
    .map((s) => (s.stringData || {})[ref.key]).find((u) => u);
  check("the example URL asks for a writable host (target_session_attrs=read-write)",
    example && /target_session_attrs=read-write/.test(example), example);
  const pool = Number(envValue("database-pool") || (flags["database-pool"] || {}).def);
  check("-database-pool is a positive number", pool >= 1, String(pool));
  check("no data volume: the state is in the database",
    !(c.volumeMounts || []).length && !(dep.spec.template.spec.volumes || []).length);
  check("the data directory is not set", !envValue("data-dir"));

  const pdb = pdbs.find((p) => sameLabels(p.spec.selector.matchLabels, dep.spec.template.metadata.labels));
  check("a PodDisruptionBudget selects the pods", !!pdb);
  if (!pdb) return;
  const allowed = pdb.spec.minAvailable !== undefined ? replicas - pdb.spec.minAvailable : pdb.spec.maxUnavailable;
  check("the budget lets exactly one pod go at a time", allowed === 1,
    JSON.stringify({ minAvailable: pdb.spec.minAvailable, maxUnavailable: pdb.spec.maxUnavailable }));
}

function checkAgreement(objects) {
  const flags = helpFlags();
  const image = imageConfig();
  check("-help lists -port, -data-dir, -address with their env names",
    ["port", "data-dir", "address"].every((f) => flags[f] && flags[f].env));
  const sts = byKind(objects, "StatefulSet");
  const deps = byKind(objects, "Deployment");
  const svc = byKind(objects, "Service")[0];
  const secrets = byKind(objects, "Secret");
  // The auth Secret is shown once, in deploy/kubernetes/secret.yaml.
  const top = path.join(dir, "..", "secret.yaml");
  if (path.basename(dir) !== "kubernetes" && fs.existsSync(top))
    for (const doc of YAML.parseAllDocuments(fs.readFileSync(top, "utf8"))) secrets.push(doc.toJS());
  check("one workload (a StatefulSet or a Deployment) and one Service", sts.length + deps.length === 1 && svc);
  if (sts.length + deps.length !== 1 || !svc) return;
  if (sts.length) checkStatefulSet(sts[0], svc, secrets, flags, image);
  else checkDeployment(deps[0], svc, secrets, byKind(objects, "PodDisruptionBudget"), flags, image);
}

function checkKustomization() {
  const k = YAML.parse(fs.readFileSync(path.join(dir, "kustomization.yaml"), "utf8"));
  check("kustomization: apiVersion and kind",
    k.apiVersion === "kustomize.config.k8s.io/v1beta1" && k.kind === "Kustomization");
  const res = k.resources || [];
  check("kustomization: every resource exists", res.every((r) => fs.existsSync(path.join(dir, r))), res.join(" "));
  const want = fs.readdirSync(dir).filter((f) => /\.ya?ml$/.test(f) && !/^(kustomization|secret)\.yaml$/.test(f));
  check("kustomization: lists every manifest but the example Secret",
    want.every((f) => res.includes(f)) && !res.includes("secret.yaml"), want.join(" "));
  const img = (k.images || []).find((i) => i.name === "distribuerad");
  check("kustomization: sets the distribuerad image's tag", img && img.newTag);
}

for (const d of dirs) {
  dir = d;
  prefix = `${dir}: `;
  const objects = loadObjects();
  validateSchemas(objects);
  checkAgreement(objects);
  checkKustomization();
}
console.log(`manifests: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
process.exit(failed ? 1 : 0);
