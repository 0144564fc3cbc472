// Validates the Kubernetes manifests of docker/k8s:
//
//   1. every resource against the Kubernetes API schemas (kubernetes-models:
//      types, formats, required fields, enums);
//   2. no unknown fields anywhere (a misspelt `livenesProbe` is dropped by
//      the API server with a warning at best): each resource is type-checked
//      by the TypeScript compiler against the models' interfaces, whose
//      excess-property check names the field and suggests the right one;
//   3. the kustomization lists exactly the YAML files beside it, and its
//      rendering (when given, from `kubectl kustomize`) holds the same
//      resources and passes 1 and 2;
//   4. what no schema sees: selectors that select the Deployment's pods,
//      Service target ports the container declares, gRPC probes on the gRPC
//      port (on the plaintext --health_address port with TLS), the files of
//      --tls_* and --auth_token_file on mounted volumes, a termination grace
//      over the preStop pause plus --shutdown_grace_s, an autoscaler and a
//      disruption budget that fit;
//   5. each variant (a kustomization over docker/k8s, e.g. docker/k8s-tls),
//      rendered: the same resources, passing 1, 2 and 4.
//
//   node validate.mjs K8S_DIR [RENDERED_YAML [NAME=RENDERED_VARIANT_YAML...]]
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import YAML from "yaml";

const here = path.dirname(fileURLToPath(import.meta.url));
const [k8sDir, renderedFile, ...variants] = process.argv.slice(2);
if (!k8sDir) {
  console.error("usage: node validate.mjs K8S_DIR [RENDERED_YAML [NAME=RENDERED_VARIANT_YAML...]]");
  process.exit(2);
}

const errors = [];
const fail = (where, message) => errors.push(`${where}: ${message}`);

function parseDocuments(file, text) {
  const docs = [];
  YAML.parseAllDocuments(text, { prettyErrors: true }).forEach((doc, i) => {
    for (const e of [...doc.errors, ...doc.warnings]) fail(`${file}#${i}`, e.message);
    const value = doc.toJS();
    if (value !== null) docs.push({ where: `${file}#${i}`, value });
  });
  return docs;
}

// "apps/v1" -> "apps/v1", "v1" -> "v1": the models' folder of an apiVersion.
const modelPath = (doc) => `kubernetes-models/${doc.apiVersion}/${doc.kind}`;

async function validateSchemas(docs) {
  for (const { where, value } of docs) {
    if (typeof value.apiVersion !== "string" || typeof value.kind !== "string") {
      fail(where, "no apiVersion or kind");
      continue;
    }
    let Model;
    try {
      Model = (await import(modelPath(value)))[value.kind];
    } catch {
      fail(where, `unknown resource ${value.apiVersion} ${value.kind}`);
      continue;
    }
    try {
      new Model(value).validate();
    } catch (e) {
      fail(where, `${value.kind} ${value.metadata?.name}: ${e.message}`);
    }
  }
}

// One .ts file per resource, `const r: IKind = <the resource>;`, compiled
// with tsc --noEmit: an unknown field is an excess property.
function checkUnknownFields(docs) {
  const dir = fs.mkdtempSync(path.join(here, ".typecheck-"));
  try {
    const files = new Map();
    docs.forEach(({ where, value }, i) => {
      if (typeof value.kind !== "string") return;
      const name = `r${i}.ts`;
      files.set(name, where);
      fs.writeFileSync(
        path.join(dir, name),
        `import type { I${value.kind} } from "${modelPath(value)}";\n` +
          `export const r: I${value.kind} = ${JSON.stringify(value, null, 2)};\n`,
      );
    });
    if (files.size === 0) return;
    fs.writeFileSync(
      path.join(dir, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          strict: true,
          noEmit: true,
          skipLibCheck: true,
          module: "nodenext",
          moduleResolution: "nodenext",
          types: [],
        },
        include: ["*.ts"],
      }),
    );
    try {
      execFileSync(path.join(here, "node_modules/.bin/tsc"), ["-p", dir, "--pretty", "false"], {
        encoding: "utf8",
        stdio: ["ignore", "pipe", "pipe"],
      });
    } catch (e) {
      const output = `${e.stdout ?? ""}${e.stderr ?? ""}`.trim();
      if (!output) throw e;
      for (const line of output.split("\n")) {
        const m = line.match(/(r\d+\.ts)\((\d+),\d+\): error TS\d+: (.*)/);
        if (m && files.has(m[1])) {
          const source = fs.readFileSync(path.join(dir, m[1]), "utf8").split("\n")[m[2] - 1];
          fail(files.get(m[1]), `${m[3]} (at ${source.trim()})`);
        } else if (line.trim()) {
          fail("tsc", line);
        }
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const key = (r) => `${r.kind}/${r.metadata?.name}`;
const selects = (selector, labels) =>
  selector && Object.entries(selector).every(([k, v]) => labels?.[k] === v);
const flagValue = (container, flag) => {
  for (const arg of container.args ?? []) {
    const m = arg.match(new RegExp(`^--${flag}=(.*)$`));
    if (m) return m[1];
  }
  const env = (container.env ?? []).find((e) => e.name === `LOSS_SERVER_${flag.toUpperCase()}`);
  return env?.value;
};

// What a schema cannot see, across the resources.
function checkConsistency(resources, where) {
  const deployments = resources.filter((r) => r.kind === "Deployment");
  if (deployments.length !== 1) {
    fail(where, `want one Deployment, found ${deployments.length}`);
    return;
  }
  const deployment = deployments[0];
  const w = `${where}: ${key(deployment)}`;
  const pod = deployment.spec?.template ?? {};
  const podLabels = pod.metadata?.labels ?? {};
  if (!selects(deployment.spec?.selector?.matchLabels, podLabels)) {
    fail(w, "spec.selector does not select the pod template's labels");
  }
  const containers = pod.spec?.containers ?? [];
  const server = containers.find((c) => c.name === "server");
  if (!server) {
    fail(w, "no container named server");
    return;
  }
  const ports = new Map((server.ports ?? []).map((p) => [p.name, p.containerPort]));
  if (!ports.has("grpc")) fail(w, "the server container has no port named grpc");
  // The kubelet's gRPC probe speaks plaintext only: with TLS it must ask the
  // plaintext health listener (--health_address), declared as port "health".
  const healthAddress = flagValue(server, "health_address");
  const tls = flagValue(server, "tls_cert");
  if (tls && !healthAddress) fail(w, "--tls_cert without --health_address: the kubelet's gRPC probes cannot speak TLS");
  const probed = healthAddress ? "health" : "grpc";
  if (healthAddress && ports.get("health") !== Number(healthAddress.split(":").pop())) {
    fail(w, `--health_address=${healthAddress} is not the container port named health`);
  }
  for (const probe of ["readinessProbe", "livenessProbe"]) {
    const grpc = server[probe]?.grpc;
    if (!grpc) fail(w, `${probe} is not a gRPC health probe`);
    else if (grpc.port !== ports.get(probed)) fail(w, `${probe} probes port ${grpc.port}, not ${probed}`);
  }
  // Files the server reads (certificates, keys, the token) come from mounted volumes.
  const volumes = new Set((pod.spec?.volumes ?? []).map((v) => v.name));
  for (const flag of ["tls_cert", "tls_key", "tls_client_ca", "auth_token_file"]) {
    const file = flagValue(server, flag);
    if (!file) continue;
    const mount = (server.volumeMounts ?? []).find((m) => file.startsWith(`${m.mountPath.replace(/\/$/, "")}/`));
    if (!mount) fail(w, `--${flag}=${file} is on no volumeMount (the root filesystem is read-only)`);
    else if (!volumes.has(mount.name)) fail(w, `volumeMount ${mount.name} (for --${flag}) names no volume`);
  }
  if (server.readinessProbe?.grpc && server.readinessProbe.grpc.service !== "lossservice.v1.LossService") {
    fail(w, "readinessProbe should ask for lossservice.v1.LossService (NOT_SERVING while draining)");
  }
  const grace = Number(flagValue(server, "shutdown_grace_s"));
  if (!Number.isInteger(grace)) fail(w, "no --shutdown_grace_s");
  const preStop = server.lifecycle?.preStop;
  const pause = preStop?.sleep
    ? preStop.sleep.seconds
    : Number(preStop?.exec?.command?.[0] === "sleep" ? preStop.exec.command[1] : NaN);
  if (!Number.isInteger(pause)) fail(w, "no preStop pause (sleep N)");
  const termination = pod.spec?.terminationGracePeriodSeconds;
  // The kubelet's SIGKILL comes terminationGracePeriodSeconds after the
  // preStop hook starts: it must leave the drain its whole grace, and the
  // exit a moment after it.
  if (Number.isInteger(grace) && Number.isInteger(pause) && !(termination > pause + grace)) {
    fail(
      w,
      `terminationGracePeriodSeconds ${termination} <= preStop ${pause} s + --shutdown_grace_s ${grace}`,
    );
  }
  for (const env of server.env ?? []) {
    const ref = env.valueFrom?.resourceFieldRef;
    if (ref && server.resources?.limits?.[ref.resource.replace(/^limits\./, "")] === undefined) {
      fail(w, `${env.name} reads ${ref.resource}, which the container does not set`);
    }
  }

  const services = resources.filter((r) => r.kind === "Service");
  const headless = services.filter((s) => s.spec?.clusterIP === "None");
  if (headless.length !== 1) fail(where, `want one headless Service, found ${headless.length}`);
  if (services.length - headless.length !== 1) fail(where, "want one ClusterIP Service");
  for (const service of services) {
    if (!selects(service.spec?.selector, podLabels)) fail(key(service), "selects no server pod");
    for (const p of service.spec?.ports ?? []) {
      const target = p.targetPort ?? p.port;
      const known = typeof target === "string" ? ports.has(target) : [...ports.values()].includes(target);
      if (!known) fail(key(service), `port ${p.name}: target ${target} is no container port`);
    }
  }

  const hpas = resources.filter((r) => r.kind === "HorizontalPodAutoscaler");
  if (hpas.length !== 1) fail(where, `want one HorizontalPodAutoscaler, found ${hpas.length}`);
  for (const hpa of hpas) {
    const ref = hpa.spec?.scaleTargetRef ?? {};
    if (ref.kind !== "Deployment" || ref.name !== deployment.metadata?.name) {
      fail(key(hpa), `scales ${ref.kind}/${ref.name}, not ${key(deployment)}`);
    }
    const cpuTarget = (hpa.spec?.metrics ?? []).some((m) => m.resource?.name === "cpu");
    if (cpuTarget && !server.resources?.requests?.cpu) fail(key(hpa), "CPU target without a CPU request");
  }
  const pdbs = resources.filter((r) => r.kind === "PodDisruptionBudget");
  if (pdbs.length !== 1) fail(where, `want one PodDisruptionBudget, found ${pdbs.length}`);
  for (const pdb of pdbs) {
    if (!selects(pdb.spec?.selector?.matchLabels, podLabels)) fail(key(pdb), "selects no server pod");
    const min = Math.min(...hpas.map((h) => h.spec?.minReplicas ?? 1), deployment.spec?.replicas ?? 1);
    if (Number.isInteger(pdb.spec?.maxUnavailable) && pdb.spec.maxUnavailable >= min) {
      fail(key(pdb), `maxUnavailable ${pdb.spec.maxUnavailable} would allow every one of ${min} replicas down`);
    }
  }
}

// --- main -----------------------------------------------------------------
const kustomization = YAML.parse(fs.readFileSync(path.join(k8sDir, "kustomization.yaml"), "utf8"));
const listed = kustomization.resources ?? [];
const present = fs
  .readdirSync(k8sDir)
  .filter((f) => /\.ya?ml$/.test(f) && f !== "kustomization.yaml")
  .sort();
for (const f of listed) if (!present.includes(f)) fail("kustomization.yaml", `lists ${f}, which does not exist`);
for (const f of present) if (!listed.includes(f)) fail("kustomization.yaml", `does not list ${f}`);
if (new Set(listed).size !== listed.length) fail("kustomization.yaml", "lists a file twice");

const docs = present.flatMap((f) => parseDocuments(f, fs.readFileSync(path.join(k8sDir, f), "utf8")));
await validateSchemas(docs);
checkUnknownFields(docs);
checkConsistency(
  docs.map((d) => d.value),
  "resources",
);
let summary = `${present.length} files, ${docs.length} resources`;

// The kustomization's rendering, then each variant's (docker/k8s-tls): the
// same resources, each valid.
for (const [name, file] of [["rendered", renderedFile], ...variants.map((v) => v.split("="))]) {
  if (!file) continue;
  const rendered = parseDocuments(name, fs.readFileSync(file, "utf8"));
  await validateSchemas(rendered);
  checkUnknownFields(rendered);
  checkConsistency(
    rendered.map((d) => d.value),
    name,
  );
  const want = docs.map((d) => key(d.value)).sort().join(", ");
  const got = rendered.map((d) => key(d.value)).sort().join(", ");
  if (want !== got) fail(name, `holds ${got}; the files hold ${want}`);
  summary += name === "rendered" ? `; the kustomization renders the same ${rendered.length}` : `; ${name} too`;
}

if (errors.length) {
  for (const e of errors) console.error(`FAIL ${e}`);
  console.error(`manifests: ${errors.length} problems`);
  process.exit(1);
}
console.log(`manifests: ${summary}: ${docs.map((d) => key(d.value)).join(", ")} valid`);
