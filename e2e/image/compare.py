#!/usr/bin/env python3
"""Checks that the daemonless images (e2e/image/build.sh) are the images the Dockerfile declares.

    e2e/image/compare.py [--docker] ARCHIVE_DIR

For each of oxka and oxka-operator it reads the docker-archive NAME_VERSION.tar that build.sh wrote and
compares, with the Dockerfile's final stage of the same name:

* the image config: Entrypoint, User, Env, WorkingDir (Cmd empty), as declared by ENTRYPOINT, USER,
  ENV and WORKDIR;
* the files: path, type, mode and owner of every entry of the image's layers.

With --docker (where `docker build` works: a laptop, GitHub Actions) the other side is a real
`docker build --target NAME` of the Dockerfile, saved and read the same way. Without it (here: no
Docker engine) the other side is what the Dockerfile's stage would hold: the build stage must run
e2e/image/rootfs.sh on target/release/NAME into /out/NAME, the final stage must be FROM scratch and COPY
exactly /out/NAME/ to /, and rootfs.sh is run here on the binary inside the daemonless image to list what
that COPY delivers (with the options the Dockerfile passes it: --distribution for oxka). Exits
non-zero with the differences.
"""

import argparse
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
IMAGES = {"oxka": "1000:1000", "oxka-operator": "65532:65532"}


def version():
    with open(os.path.join(ROOT, "Cargo.toml")) as f:
        return re.search(r'^version = "(.*)"', f.read(), re.M).group(1)


def read_archive(path):
    """(config, {path: (type, mode, uid:gid)}) of a docker-archive: the layers applied in order."""
    with tarfile.open(path) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))[0]
        config = json.load(outer.extractfile(manifest["Config"]))["config"]
        files = {}
        for layer in manifest["Layers"]:
            with tarfile.open(fileobj=io.BytesIO(outer.extractfile(layer).read())) as t:
                for m in t.getmembers():
                    name = "/" + m.name.lstrip("./").rstrip("/")
                    base = os.path.basename(name)
                    if base.startswith(".wh."):  # whiteouts remove what lower layers had
                        files.pop(os.path.join(os.path.dirname(name), base[4:]), None)
                        continue
                    if name == "/":
                        continue
                    kind = "d" if m.isdir() else "l" if m.issym() else "f" if m.isfile() or m.islnk() else "?"
                    files[name] = (kind, oct(m.mode & 0o7777), f"{m.uid}:{m.gid}")
    return config, files


def extract_file(archive, inner_path, dest, links=8):
    """Writes the image's file INNER_PATH to DEST, following symbolic links (the oxka image's
    /usr/local/bin/oxka links to /opt/oxka/bin/oxka)."""
    with tarfile.open(archive) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))[0]
        for layer in manifest["Layers"]:
            with tarfile.open(fileobj=io.BytesIO(outer.extractfile(layer).read())) as t:
                for m in t.getmembers():
                    if "/" + m.name.lstrip("./") == inner_path:
                        if m.issym() and links > 0:
                            target = os.path.normpath(os.path.join(os.path.dirname(inner_path), m.linkname))
                            return extract_file(archive, target, dest, links - 1)
                        with open(dest, "wb") as f:
                            f.write(t.extractfile(m).read())
                        os.chmod(dest, 0o755)
                        return
    raise SystemExit(f"{archive} has no {inner_path}")


def dockerfile_stage(name):
    """The instructions of the Dockerfile's stage NAME, as (instruction, argument) pairs."""
    with open(os.path.join(ROOT, "Dockerfile")) as f:
        text = re.sub(r"\\\n", " ", f.read())
    stages, current = {}, None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instr, _, arg = line.partition(" ")
        instr = instr.upper()
        if instr == "FROM":
            m = re.match(r"(\S+)(?:\s+AS\s+(\S+))?", arg, re.I)
            current = m.group(2) or m.group(1)
            stages[current] = [("FROM", m.group(1))]
        elif current:
            stages[current].append((instr, arg.strip()))
    return stages[name]


def declared_config(name):
    config = {"Entrypoint": None, "User": "", "Env": [], "WorkingDir": ""}
    for instr, arg in dockerfile_stage(name):
        if instr == "ENTRYPOINT":
            config["Entrypoint"] = json.loads(arg)
        elif instr == "USER":
            config["User"] = arg
        elif instr == "ENV":
            config["Env"].append(arg.replace(" ", "=", 1) if "=" not in arg else arg)
        elif instr == "WORKDIR":
            config["WorkingDir"] = arg
    return config


def config_of(config):
    return {"Entrypoint": config.get("Entrypoint"), "User": config.get("User", ""),
            "Env": config.get("Env") or [], "WorkingDir": config.get("WorkingDir", "")}


def files_of_dir(rootfs):
    files = {}
    for dirpath, dirnames, filenames in os.walk(rootfs):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            kind = "d" if os.path.isdir(p) and not os.path.islink(p) else "l" if os.path.islink(p) else "f"
            # COPY --from keeps modes; the build stage runs as root, so every file is root's.
            files["/" + os.path.relpath(p, rootfs)] = (kind, oct(st.st_mode & 0o7777), "0:0")
    return files


def expected_without_docker(name, archive, work):
    stage = dockerfile_stage(name)
    problems = []
    if stage[0] != ("FROM", "scratch"):
        problems.append(f"stage {name} is not FROM scratch: {stage[0]}")
    copies = [a for i, a in stage if i in ("COPY", "ADD", "RUN")]
    if copies != [f"--from=build /out/{name}/ /"]:
        problems.append(f"stage {name} adds {copies}, expected only COPY --from=build /out/{name}/ /")
    build_run = " ".join(a for i, a in dockerfile_stage("build") if i == "RUN")
    run = re.search(rf"e2e/image/rootfs\.sh target/release/{re.escape(name)} /out/{re.escape(name)}((?: --[a-z-]+)*)",
                    build_run)
    if not run:
        problems.append(f"the build stage does not lay out /out/{name} with e2e/image/rootfs.sh")
    binary = os.path.join(work, name)
    extract_file(archive, f"/usr/local/bin/{name}", binary)
    rootfs = os.path.join(work, f"{name}-rootfs")
    options = run.group(1).split() if run else []
    subprocess.run(["sh", os.path.join(ROOT, "e2e/image/rootfs.sh"), binary, rootfs] + options, check=True)
    return declared_config(name), files_of_dir(rootfs), problems


def expected_with_docker(name, work):
    tag = f"oxka-compare/{name}:{version()}"
    subprocess.run(["docker", "build", "-q", "--target", name, "-t", tag, ROOT], check=True,
                   stdout=subprocess.DEVNULL)
    out = os.path.join(work, f"{name}-docker.tar")
    subprocess.run(["docker", "save", "-o", out, tag], check=True)
    config, files = read_archive(out)
    return config_of(config), files, []


def diff(label, want, have):
    lines = []
    for p in sorted(set(want) | set(have)):
        if want.get(p) != have.get(p):
            lines.append(f"  {label} {p}: Dockerfile {want.get(p)}, daemonless {have.get(p)}")
    return lines


def tags_follow_version():
    """The chart's default operator image and a KafkaCluster's default image name this version's images."""
    v = version()
    problems = []
    chart = open(os.path.join(ROOT, "charts/oxka-operator/Chart.yaml")).read()
    values = open(os.path.join(ROOT, "charts/oxka-operator/values.yaml")).read()
    if not re.search(rf'^appVersion: "?{re.escape(v)}"?$', chart, re.M):
        problems.append(f"charts/oxka-operator/Chart.yaml appVersion is not {v} (the operator image's tag)")
    if not re.search(r"^  repository: oxka-operator$", values, re.M):
        problems.append("charts/oxka-operator/values.yaml image.repository is not oxka-operator")
    crd = open(os.path.join(ROOT, "operator/src/crd/mod.rs")).read()
    if 'format!("oxka:{}", env!("CARGO_PKG_VERSION"))' not in crd:
        problems.append("operator/src/crd/mod.rs default_image() is not oxka:<crate version>")
    return problems


def distribution_layout(files):
    """What the oxka image must hold in /opt/oxka (the release archive's layout, issue 16): every script
    name of the checkout's bin/ as a link, the binary, the shipped configs, logs/, README.md, LICENSE."""
    want = {"/opt/oxka/bin/oxka": "f", "/opt/oxka/config/server.properties": "f",
            "/opt/oxka/config/zookeeper.properties": "f", "/opt/oxka/logs": "d", "/opt/oxka/README.md": "f",
            "/opt/oxka/LICENSE": "f", "/usr/local/bin/oxka": "l"}
    for script in sorted(os.listdir(os.path.join(ROOT, "bin"))):
        if script.endswith(".sh"):
            want[f"/opt/oxka/bin/{script}"] = "l"
    return [f"  layout {p}: want {'a link' if k == 'l' else 'a directory' if k == 'd' else 'a file'}, image has "
            f"{files.get(p, ('nothing',))[0]}" for p, k in want.items() if files.get(p, ("",))[0] != k]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--docker", action="store_true", help="build the Dockerfile with docker and compare")
    ap.add_argument("archives", help="directory with build.sh's NAME_VERSION.tar archives")
    args = ap.parse_args()
    failed = False
    problems = tags_follow_version()
    if problems:
        failed = True
        print("image tags:\n  " + "\n  ".join(problems))
    else:
        print(f"image tags: oxka:{version()} and oxka-operator:{version()} are the defaults of the CRD and the chart")
    with tempfile.TemporaryDirectory() as work:
        for name in IMAGES:
            archive = os.path.join(args.archives, f"{name}_{version()}.tar")
            config, files = read_archive(archive)
            have_config = config_of(config)
            if args.docker:
                want_config, want_files, problems = expected_with_docker(name, work)
            else:
                want_config, want_files, problems = expected_without_docker(name, archive, work)
            problems += [f"  config {k}: Dockerfile {want_config[k]!r}, daemonless {have_config[k]!r}"
                         for k in want_config if want_config[k] != have_config[k]]
            if config.get("Cmd"):
                problems.append(f"  config Cmd: daemonless {config['Cmd']!r}, Dockerfile none")
            problems += diff("file", want_files, files)
            if name == "oxka":
                problems += distribution_layout(files)
            how = "docker build" if args.docker else "the Dockerfile's declarations"
            if problems:
                failed = True
                print(f"image {name}: differs from {how}:")
                print("\n".join(problems))
            else:
                print(f"image {name}: {len(files)} entries, entrypoint {have_config['Entrypoint']}, user "
                      f"{have_config['User']}: same as {how}")
    shutil.rmtree(os.path.join(ROOT, "__pycache__"), ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
