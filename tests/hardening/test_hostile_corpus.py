"""Hostile inputs, each refused with a specific reason, on the real engine, with nothing changed.

Every case goes through a real :class:`~bot.pipeline.Pipeline` under the team policy, as the admin (UADMIN,
who may run, rm, exec, ...) unless it says ``viewer``. A case passes when

- the outcome is a refusal: ``denied`` with the expected rule, or ``usage`` with a message (never ``ok``,
  never ``internal``);
- chatdock sent no request that changes anything (POST/PUT/DELETE, recorded at the HTTP level);
- the engine's containers and networks are the same before and after (differences provably made by other
  processes sharing the engine are reported, not counted), and the fixture containers are still running;
- the marker file that the shell-injection cases try to create does not exist.

``%TOKEN%`` placeholders are filled at run time with the fixture resources (see ``conftest.Targets``).
Counts are printed at the end of the run and checked by ``test_zz_corpus_tally``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import pytest

from bot.models import Actor
from bot.pipeline import Outcome
from bot.policy import Policy
from tests.conftest import PREFIX, TEST_POLICY, make_pipeline
from tests.hardening.conftest import SpyEngine, Targets
from tests.hardening.tally import TALLY

IMG = "local/busybox:test"
MARKER = Path(f"/tmp/cdt-pwned-{uuid.uuid4().hex}")
ADMIN = Actor(user="UADMIN", channel="C1")
VIEWER = Actor(user="UVIEW", channel="C1")
DIGEST = "sha256:" + "0123456789abcdef" * 4


@dataclass(frozen=True)
class Case:
    id: str
    text: str
    kind: str  # "denied" or "usage"
    rule: str | None = None  # required for "denied"
    actor: str = "admin"
    says: str | None = None  # a fragment the message must contain


def denied(id: str, text: str, rule: str, *, actor: str = "admin", says: str | None = None) -> Case:
    return Case(id, text, "denied", rule, actor, says)


def usage(id: str, text: str, *, actor: str = "admin", says: str | None = None) -> Case:
    return Case(id, text, "usage", None, actor, says)


PRIV = "never:privileged"
MOUNTS = "never:host-mounts"
NS = "never:host-namespaces"
NET = "never:network-host"
DEV = "never:devices"
CAP = "never:cap-add"
SECOPT = "never:security-opt"
TUNE = "never:host-tuning"
ENV = "never:env-passthrough"
SCOPE = "containers.scope"
PROTECT = "containers.protect"
DENY = "default-deny"

CORPUS: list[Case] = [
    # --- --privileged, every spelling ------------------------------------------------------------------
    denied("priv-long", f"run -d --privileged {IMG}", PRIV),
    denied("priv-eq-true", f"run -d --privileged=true {IMG}", PRIV),
    denied("priv-eq-1", f"run -d --privileged=1 {IMG}", PRIV),
    denied("priv-eq-TRUE", f"run -d --privileged=TRUE {IMG}", PRIV),
    denied("priv-after-publish", f"run -d -p 19000:80 --privileged {IMG}", PRIV),
    denied("priv-after-bundle-dit", f"run -dit --privileged {IMG}", PRIV),
    denied("priv-dry-run-prefix", f"--dry-run run --privileged {IMG}", PRIV),
    denied("priv-dry-run-flag", f"run --dry-run --privileged {IMG} true", PRIV),
    denied("priv-container-run", f"container run -d --privileged {IMG}", PRIV),
    denied("priv-docker-prefix", f"docker run -d --privileged {IMG}", PRIV),
    denied("priv-slash-docker", f"/docker run --rm --privileged {IMG} id", PRIV),
    denied("priv-with-name", f"run -d --name %NAME% --privileged {IMG}", PRIV),
    denied("priv-em-dash", f"run -d \u2014privileged {IMG}", PRIV),
    denied("priv-smart-double-quotes", f"run -d \u201c--privileged\u201d {IMG}", PRIV),
    denied("priv-smart-single-quotes", f"run -d \u2018--privileged=true\u2019 {IMG}", PRIV),
    denied("priv-viewer", f"run -d --privileged {IMG}", PRIV, actor="viewer"),
    denied("priv-exec", "exec --privileged %WEB% sh", PRIV),
    usage("priv-after-image", f"run -d {IMG} --privileged", says="comes after the image"),
    # --- bundled short flags around forbidden ones ------------------------------------------------------
    denied("bundle-dv", f"run -dv /:/host {IMG}", MOUNTS),
    denied("bundle-dv-attached", f"run -dv/:/host {IMG}", MOUNTS),
    denied("bundle-itdv-socket", f"run -itdv /var/run/docker.sock:/s {IMG}", MOUNTS),
    denied("bundle-dv-equals", f"run -dv=/etc:/e {IMG}", MOUNTS),
    denied("bundle-tiv-then-d", f"run -tiv /:/h -d {IMG}", MOUNTS),
    denied("bundle-dp-then-v", f"run -dp 19000:80 -v /:/h {IMG}", MOUNTS),
    denied("bundle-de-home", f"run -de HOME {IMG}", ENV),
    denied("bundle-deHOME-attached", f"run -deHOME {IMG}", ENV),
    # --- namespaces ------------------------------------------------------------------------------------
    denied("pid-eq-host", f"run -d --pid=host {IMG}", NS),
    denied("pid-space-host", f"run -d --pid host {IMG}", NS),
    denied("pid-container", f"run -d --pid=container:%EXT% {IMG}", NS),
    denied("ipc-space-host", f"run -d --ipc host {IMG}", NS),
    denied("ipc-eq-host", f"run -d --ipc=host {IMG}", NS),
    denied("ipc-container", f"run -d --ipc container:%EXT% {IMG}", NS),
    denied("uts-eq-host", f"run -d --uts=host {IMG}", NS),
    denied("userns-eq-host", f"run -d --userns=host {IMG}", NS),
    denied("cgroupns-space-host", f"run -d --cgroupns host {IMG}", NS),
    denied("cgroupns-eq-host", f"run -d --cgroupns=host {IMG}", NS),
    # --- networks --------------------------------------------------------------------------------------
    denied("net-eq-host", f"run -d --net=host {IMG}", NET),
    denied("network-space-host", f"run -d --network host {IMG}", NET),
    denied("network-eq-host", f"run -d --network=host {IMG}", NET),
    denied("net-space-host", f"run -d --net host {IMG}", NET),
    denied("network-eq-container", f"run -d --network=container:%EXT% {IMG}", NET),
    denied("net-space-container", f"run -d --net container:%OTHERID% {IMG}", NET),
    denied("network-host-by-id-prefix", f"run -d --network %HOSTNET% {IMG}", NET),
    denied("network-last-one-is-host", f"run -d --network bridge --network host {IMG}", NET),
    denied("network-smart-quoted-host", f"run -d --network \u201chost\u201d {IMG}", NET),
    denied("net-host-viewer", f"run -d --net=host {IMG}", NET, actor="viewer"),
    denied("network-connect-host", "network connect host %WEB%", NET),
    denied("network-create-host-driver", "network create -d host %NAME%", "never:network-driver"),
    denied("network-create-macvlan", "network create --driver=macvlan %NAME%", "never:network-driver"),
    denied("network-create-overlay", "network create -d overlay %NAME%", "never:network-driver"),
    denied("network-create-null", "network create --driver null %NAME%", "never:network-driver"),
    denied("network-create-reserved-label", "network create -l chatdock.managed=true %NAME%", "never:reserved-label"),
    denied("network-connect-host-by-id", "network connect %HOSTNET% %WEB%", NET),
    denied(
        "network-create-driver-last-one-wins",
        "network create --driver=bridge --driver=host %NAME%",
        "never:network-driver",
    ),
    denied("network-create-driver-case", "network create -d Host %NAME%", "never:network-driver"),
    usage("network-create-driver-options", "network create -o com.docker.network.bridge.name=docker0 %NAME%"),
    denied("network-rm-host-by-id", "network rm %HOSTNET%", "networks.predefined"),
    denied("network-rm-bridge", "network rm bridge", "networks.predefined"),
    denied("network-rm-host", "network rm host", "networks.predefined"),
    denied("network-rm-none", "/net rm none", "networks.predefined"),
    # --- host mounts, the Docker socket, other containers' volumes ------------------------------------
    denied("v-root", f"run -d -v /:/host {IMG}", MOUNTS),
    denied("volume-root", f"run -d --volume /:/host {IMG}", MOUNTS),
    denied("volume-eq-etc-ro", f"run -d --volume=/etc:/etc:ro {IMG}", MOUNTS),
    denied("v-relative", f"run -d -v ./x:/y {IMG}", MOUNTS),
    denied("v-home", f"run -d -v ~/x:/y {IMG}", MOUNTS),
    denied("v-docker-socket", f"run -d -v /var/run/docker.sock:/var/run/docker.sock {IMG}", MOUNTS),
    denied("v-run-docker-socket", f"run -d -v /run/docker.sock:/s {IMG}", MOUNTS),
    denied("v-socket-traversal", f"run -d -v /var/run/../run/docker.sock:/s {IMG}", MOUNTS),
    denied("v-containerd-socket", f"run -d -v /run/containerd/containerd.sock:/c {IMG}", MOUNTS),
    denied("v-named-volume", f"run -d -v data:/data {IMG}", MOUNTS),
    denied("v-anonymous-volume", f"run -d -v /data {IMG}", MOUNTS),
    denied("volume-proc", f"run -d --volume /proc:/hostproc {IMG}", MOUNTS),
    denied("v-smart-quoted", f"run -d -v \u201c/:/h\u201d {IMG}", MOUNTS),
    denied("mount-bind-src-dst", f"run -d --mount type=bind,src=/,dst=/h {IMG}", MOUNTS),
    denied("mount-source-target-bind", f"run -d --mount source=/,target=/h,type=bind {IMG}", MOUNTS),
    denied("mount-eq-socket", f"run -d --mount=type=bind,source=/var/run/docker.sock,target=/s {IMG}", MOUNTS),
    denied(
        "mount-volume-driver-bind",
        f"run -d --mount type=volume,dst=/h,volume-opt=type=none,volume-opt=o=bind,volume-opt=device=/ {IMG}",
        MOUNTS,
    ),
    denied("mount-tmpfs", f"run -d --mount type=tmpfs,dst=/t {IMG}", MOUNTS),
    denied("volumes-from", f"run -d --volumes-from %EXT% {IMG}", "never:volumes-from"),
    denied("volumes-from-eq-ro", f"run -d --volumes-from=%EXT%:ro {IMG}", "never:volumes-from"),
    denied("use-api-socket", f"run -d --use-api-socket {IMG}", "never:docker-socket"),
    denied("use-api-socket-eq-true", f"run -d --use-api-socket=true {IMG}", "never:docker-socket"),
    # --- devices, capabilities, confinement, kernel tuning -------------------------------------------
    denied("device-sda", f"run -d --device /dev/sda {IMG}", DEV),
    denied("device-eq-mem", f"run -d --device=/dev/mem:/dev/mem:rwm {IMG}", DEV),
    denied("device-cgroup-rule", f"run -d --device-cgroup-rule 'a *:* rwm' {IMG}", DEV),
    denied("gpus-all", f"run -d --gpus all {IMG}", DEV),
    denied("gpus-eq-all", f"run -d --gpus=all {IMG}", DEV),
    denied("cap-add-eq-all", f"run -d --cap-add=ALL {IMG}", CAP),
    denied("cap-add-sys-admin", f"run -d --cap-add SYS_ADMIN {IMG}", CAP),
    denied("cap-add-lowercase", f"run -d --cap-add=sys_ptrace {IMG}", CAP),
    denied("cap-add-twice", f"run -d --cap-add NET_ADMIN --cap-add NET_RAW {IMG}", CAP),
    denied("secopt-seccomp", f"run -d --security-opt seccomp=unconfined {IMG}", SECOPT),
    denied("secopt-eq-apparmor", f"run -d --security-opt=apparmor=unconfined {IMG}", SECOPT),
    denied("secopt-label-disable", f"run -d --security-opt label=disable {IMG}", SECOPT),
    denied("secopt-label-colon", f"run -d --security-opt label:disable {IMG}", SECOPT),
    denied("secopt-systempaths", f"run -d --security-opt systempaths=unconfined {IMG}", SECOPT),
    denied("sysctl", f"run -d --sysctl net.ipv4.ip_forward=1 {IMG}", TUNE),
    denied("sysctl-eq", f"run -d --sysctl=kernel.shm_rmid_forced=1 {IMG}", TUNE),
    denied("runtime", f"run -d --runtime runc {IMG}", TUNE),
    denied("runtime-eq", f"run -d --runtime=nvidia {IMG}", TUNE),
    denied("cgroup-parent", f"run -d --cgroup-parent / {IMG}", TUNE),
    denied("cgroup-parent-eq", f"run -d --cgroup-parent=/system.slice {IMG}", TUNE),
    # --- environment: files on chatdock's host, chatdock's own variables --------------------------------
    denied("env-file-passwd", f"run -d --env-file /etc/passwd {IMG}", "never:env-file"),
    denied("env-file-eq-environ", f"run -d --env-file=/proc/self/environ {IMG}", "never:env-file"),
    denied("e-home-no-value", f"run -d -e HOME {IMG}", ENV),
    denied("env-eq-path-no-value", f"run -d --env=PATH {IMG}", ENV),
    denied("env-space-bot-token", f"run -d --env SLACK_BOT_TOKEN {IMG}", ENV),
    denied("e-second-without-value", f"run -d -e A=1 -e SLACK_SIGNING_SECRET {IMG}", ENV),
    denied("exec-e-passthrough", "exec -e SLACK_BOT_TOKEN %WEB% env", ENV),
    denied("exec-env-file", "exec --env-file /etc/shadow %WEB% env", "never:env-file"),
    # --- images outside the allowlist ------------------------------------------------------------------
    denied("img-nginx", "run -d nginx", "images"),
    denied("img-nginx-latest", "run -d nginx:latest", "images"),
    denied("img-nginx-digest", f"run -d nginx@{DIGEST}", "images"),
    denied("img-registry-host", "run -d evil.example.com/local/busybox:test", "images"),
    denied("img-localhost-registry", "run -d localhost:5000/x", "images"),
    denied("img-ip-registry", "run -d 127.0.0.1:5000/local/busybox:test", "images"),
    denied("img-library-prefix", "run -d library/busybox", "images"),
    denied("img-docker-io-library", "run -d docker.io/library/busybox:latest", "images"),
    denied("img-docker-io-nginx", "run -d docker.io/nginx", "images"),
    denied("img-index-docker-io", "run -d index.docker.io/library/alpine", "images"),
    denied("img-busybox", "run --rm busybox id", "images"),
    denied("img-by-short-id", "run -d %IMGID12%", "images"),
    denied("img-by-full-id", "run -d %IMGID%", "images"),
    denied("img-label-shell", "run -d -l 'a=`touch %MARK%`' nginx", "images"),
    usage("img-case-upper", "run -d LOCAL/busybox:test", says="lowercase"),
    usage("img-case-mixed", "run -d Local/Busybox:test", says="lowercase"),
    usage("img-empty", 'run -d ""', says="invalid reference format"),
    usage("img-blank", 'run -d " "', says="invalid reference format"),
    usage("img-traversal", "run -d ../../images/x", says="invalid reference format"),
    usage("img-dot-slash", "run -d ./local/busybox", says="invalid reference format"),
    usage("img-absolute", "run -d /local/busybox", says="invalid reference format"),
    usage("img-double-slash", "run -d local//busybox", says="invalid reference format"),
    usage("img-dotdot-middle", "run -d local/../busybox", says="invalid reference format"),
    usage("img-double-tag", "run -d local/busybox:test:evil", says="invalid reference format"),
    usage("img-url", "run -d https://evil.example.com/x", says="invalid reference format"),
    usage("img-slack-link", "run -d <http://evil.example.com/x>", says="invalid reference format"),
    # --- policy limits a hostile admin might push ------------------------------------------------------
    denied("port-80", f"run -d -p 80:80 {IMG}", "ports"),
    denied("port-ssh-all-ifaces", f"run -d -p 0.0.0.0:22:22 {IMG}", "ports"),
    denied("port-random", f"run -d -p 80 {IMG}", "ports"),
    denied("port-range-straddles", f"run -d -p 18990-19010:80 {IMG}", "ports"),
    denied("memory-over-limit", f"run -d -m 2g {IMG}", "limits.memory"),
    denied("memory-eq-terabyte", f"run -d --memory=1t {IMG}", "limits.memory"),
    denied("cpus-over-limit", f"run -d --cpus 4 {IMG}", "limits.cpus"),
    denied("label-reserved-managed", f"run -d -l chatdock.managed=false {IMG}", "never:reserved-label"),
    denied("label-reserved-owner", f"run -d --label chatdock.owner=UOTHER {IMG}", "never:reserved-label"),
    denied("label-eq-reserved-autoremove", f"run -d --label=chatdock.autoremove=true {IMG}", "never:reserved-label"),
    usage("misplaced-v-after-image", f"run -d {IMG} -v /:/h", says="comes after the image"),
    usage("misplaced-net-after-image", f"run -d {IMG} --network=host", says="comes after the image"),
    usage("double-dash-then-flag", "run -- --privileged", says="invalid reference format"),
    usage("run-without-image", "run -d", says="requires at least 1 argument"),
    usage("unknown-flag-tmpfs", f"run -d --tmpfs /x {IMG}", says="unknown flag"),
    usage("unknown-flag-cidfile", f"run -d --cidfile /etc/passwd {IMG}", says="unknown flag"),
    usage("unknown-flag-link", f"run -d --link %EXT%:db {IMG}", says="unknown flag"),
    usage("unknown-flag-log-opt", f"run -d --log-driver syslog --log-opt syslog-address=tcp://x:1 {IMG}"),
    usage("unknown-flag-volume-driver", f"run -d --volume-driver local {IMG}", says="unknown flag"),
    # --- unicode look-alikes of '-' --------------------------------------------------------------------
    # read as the option a person meant (bot/flags.py), and then refused as that option
    denied("dash-u2010-hyphen", f"run \u2010\u2010privileged {IMG}", PRIV),
    denied("dash-u2011-nb-hyphen", f"run \u2011\u2011privileged {IMG}", PRIV),
    denied("dash-u2212-minus", f"run \u2212\u2212privileged {IMG}", PRIV),
    denied("dash-ufe63-small-hyphen", f"run \ufe63\ufe63privileged {IMG}", PRIV),
    denied("dash-uff0d-fullwidth", f"run \uff0d\uff0dprivileged {IMG}", PRIV),
    usage("dash-u2010-after-image", f"run -d {IMG} \u2010\u2010privileged", says="comes after the image"),
    denied("dash-u2212-volume", f"run \u2212v /:/h {IMG}", MOUNTS),
    denied("dash-uff0d-network-host", f"run -d \uff0d\uff0dnetwork=host {IMG}", NET),
    denied("dash-u2011-detach", f"run \u2011d \u2011v /:/h {IMG}", MOUNTS),
    denied("dash-u2212-exec-privileged", "exec \u2212\u2212privileged %WEB% sh", PRIV),
    denied("dash-en-privileged", f"run \u2013privileged {IMG}", PRIV),
    denied("dash-em-privileged-eq", f"run -d \u2014privileged=true {IMG}", PRIV),
    denied("dash-em-hyphen-privileged", f"run -d \u2014-privileged {IMG}", PRIV),
    denied("dash-en-hyphen-privileged", f"run -d \u2013-privileged {IMG}", PRIV),
    denied("dash-em-volume-eq", f"run -d \u2014volume=/:/h {IMG}", MOUNTS),
    denied("dash-en-bundle-dv", f"run \u2013dv /:/h {IMG}", MOUNTS),
    denied("dash-em-single-v", f"run -d \u2014v /:/h {IMG}", MOUNTS),
    denied("dash-em-net-host", f"run -d \u2014net host {IMG}", NET),
    denied("dash-en-cap-add", f"run -d \u2013cap-add ALL {IMG}", CAP),
    denied("dash-em-dry-run-privileged", f"\u2014dry-run run \u2014privileged {IMG}", PRIV),
    denied("dash-quoted-em-privileged", f"run -d \u201c\u2014privileged\u201d {IMG}", PRIV),
    usage("dash-em-after-image", f"run -d {IMG} \u2014privileged", says="comes after the image"),
    usage("dash-en-after-image-volume", f"run -d {IMG} \u2013v /:/h", says="comes after the image"),
    # dash characters chatdock does not read as '-' are refused wherever they are
    usage("dash-wave-dash", f"run \u301c\u301cprivileged {IMG}", says="only looks"),
    usage("dash-wave-dash-after-image", f"run -d {IMG} \u301cprivileged", says="only looks"),
    usage("dash-katakana-double-hyphen", f"run \u30a0privileged {IMG}", says="only looks"),
    usage("dash-en-then-wave", f"run \u2013\u301cprivileged {IMG}", says="only looks"),
    usage("fullwidth-flag-letters", f"run -d --\uff50\uff52\uff49\uff56\uff49\uff4c\uff45\uff47\uff45\uff44 {IMG}"),
    usage("fullwidth-command", f"\uff52\uff55\uff4e --privileged {IMG}", says="unknown command"),
    # --- shell metacharacters: nothing is ever executed -------------------------------------------------
    usage("sh-semicolon", "ps; touch %MARK%", says="unknown command"),
    usage("sh-and-and", "ps && touch %MARK%"),
    usage("sh-pipe", 'ps | sh -c "touch %MARK%"'),
    usage("sh-backticks", "ps `touch %MARK%`"),
    usage("sh-dollar-paren", "ps $(touch %MARK%)"),
    usage("sh-newline", "ps\ntouch %MARK%"),
    usage("sh-name-semicolon", f'run -d --name "x;touch %MARK%" {IMG}', says="Invalid container name"),
    usage("sh-name-dollar-paren", f"run -d --name '$(touch %MARK%)' {IMG}", says="Invalid container name"),
    usage("sh-name-backticks", f"run -d --name '`touch %MARK%`' {IMG}", says="Invalid container name"),
    usage("sh-image-semicolon", "run -d 'local/busybox:test;touch %MARK%'", says="invalid reference format"),
    usage("sh-image-and-and", 'run -d "local/busybox:test && touch %MARK%"', says="invalid reference format"),
    usage("sh-image-dollar-paren", "run -d '$(touch %MARK%)'", says="invalid reference format"),
    usage("sh-publish-value", f"run -d -p '19000:80;touch %MARK%' {IMG}"),
    usage("sh-restart-value", f"run -d --restart 'always;touch %MARK%' {IMG}", says="invalid restart policy"),
    usage("sh-memory-value", f"run -d -m '64m$(touch %MARK%)' {IMG}", says="invalid size"),
    usage("sh-cpus-value", f"run -d --cpus '1|touch %MARK%' {IMG}", says="--cpus"),
    usage("sh-network-value", f"run -d --network 'app;touch %MARK%' {IMG}", says="invalid network name"),
    usage("sh-stop-target", "stop 'web|touch %MARK%'", says="invalid container name"),
    usage("sh-logs-target", "logs '$(touch %MARK%)'", says="invalid container name"),
    usage("sh-exec-target", "exec '`touch %MARK%`' id", says="invalid container name"),
    usage("sh-network-create", "network create 'n;touch %MARK%'", says="invalid network name"),
    usage("sh-newline-after-image", f"run -d {IMG}\n--privileged", says="comes after the image"),
    denied("sh-env-value-with-privileged", f"run -d -e 'X=$(touch %MARK%)' --privileged {IMG}", PRIV),
    denied("sh-newlines-between-flags", f"run -d\n--privileged\n{IMG}", PRIV),
    # --- names docker would not accept -----------------------------------------------------------------
    usage("name-one-char", f"run -d --name a {IMG}", says="Invalid container name"),
    usage("name-leading-dash", f"run -d --name -x {IMG}", says="Invalid container name"),
    usage("name-leading-dot", f"run -d --name .hidden {IMG}", says="Invalid container name"),
    usage("name-leading-underscore", f"run -d --name _x {IMG}", says="Invalid container name"),
    usage("name-slash", f"run -d --name a/b {IMG}", says="Invalid container name"),
    usage("name-space", f'run -d --name "a b" {IMG}', says="Invalid container name"),
    usage("name-empty", f'run -d --name "" {IMG}', says="Invalid container name"),
    usage("name-unicode", f"run -d --name \u00fcn\u00efcode {IMG}", says="Invalid container name"),
    usage("name-leading-slash", f"run -d --name /%NAME% {IMG}", says="Invalid container name"),
    usage("name-colon", f"run -d --name a:b {IMG}", says="Invalid container name"),
    usage("network-name-empty", 'network create ""', says="invalid network name"),
    usage("network-name-space", 'network create "a b"', says="invalid network name"),
    usage("network-name-traversal", "network create ../x", says="invalid network name"),
    # --- size, control and invisible characters --------------------------------------------------------
    usage("huge-100kb", "ps " + "a" * 100_000, says="at most"),
    usage("huge-env-value", f"run -d -e A={'x' * 100_000} {IMG}", says="at most"),
    usage("just-over-4000", "ps " + "a" * 3998, says="at most"),
    usage("ctrl-nul", f"run -d\x00 {IMG}", says="control character"),
    usage("ctrl-escape-sequence", "ps \x1b[2J", says="U+001B"),
    usage("ctrl-bell", "ps\x07", says="U+0007"),
    usage("ctrl-backspaces", f"run -d --privileged\x08\x08\x08 {IMG}", says="U+0008"),
    usage("ctrl-delete", "ps\x7f", says="U+007F"),
    usage("ctrl-next-line", "ps\x85-a", says="U+0085"),
    usage("zw-space-in-flag", f"run -d --privi\u200bleged {IMG}", says="U+200B"),
    usage("zw-bom-first", f"\ufeffrun -d --privileged {IMG}", says="U+FEFF"),
    usage("bidi-rlo", f"run -d {IMG}\u202e", says="U+202E"),
    usage("zw-joiner", f"run\u200d -d --privileged {IMG}", says="U+200D"),
    usage("soft-hyphen-flag", f"run -d \u00ad-privileged {IMG}", says="U+00AD"),
    usage("lrm-target", "stop \u200e%EXT%", says="U+200E"),
    usage("line-separator-in-bundle", f"run -d\u2028--privileged {IMG}", says="unknown shorthand"),
    usage("ideographic-space", f"run\u3000--privileged {IMG}", says="unknown command"),
    usage("smart-quote-unbalanced", f"run -d \u201c--privileged {IMG}", says="unbalanced quote"),
    usage("smart-quote-unbalanced-says-where", f"run -d \u2018--privileged {IMG}", says="at column 8 (word 3,"),
    usage("apostrophe-in-name", f"run -d --name it\u2019s {IMG}", says="Invalid container name"),
    denied("apostrophe-then-privileged", f"run -d -e MSG=it\u2019s --privileged {IMG}", PRIV),
    usage("smart-quote-name-space", f"run -d --name \u2018a b\u2019 {IMG}", says="Invalid container name"),
    denied("smart-quote-volume", f"run -d \u2018-v\u2019 \u2018/:/h\u2019 {IMG}", MOUNTS),
    usage("double-prime-name", f"run -d --name \u2033x\u2033 {IMG}", says="Invalid container name"),
    # --- Slack escaping, forged mentions ---------------------------------------------------------------
    usage("slack-nested-entity-name", f"run -d --name &amp;lt;x&amp;gt; {IMG}", says="Invalid container name"),
    usage("slack-forged-mention-first", f"&lt;@UADMIN&gt; run -d --privileged {IMG}", says="unknown command"),
    denied("slack-forged-mention-viewer", f"run -d --name %NAME% {IMG} &lt;@UADMIN&gt;", DENY, actor="viewer"),
    usage("slack-real-mention-viewer", "<@UADMIN> rm -f %WEB%", actor="viewer", says="unknown command"),
    denied("slack-mention-as-target-viewer", "rm -f %WEB% <@UADMIN>", DENY, actor="viewer"),
    usage("slack-entity-image", "run -d &lt;evil&gt;", says="invalid reference format"),
    usage("slack-here-network", f"run -d --network &lt;!here&gt; {IMG}", says="invalid network name"),
    usage("slack-numeric-entities", f"run &#45;&#45;privileged {IMG}", says="invalid reference format"),
    usage("slack-double-amp", f"run -d --name &amp;amp;x {IMG}", says="Invalid container name"),
    denied("slack-link-label-flag", f"run -d <https://x.example|--privileged> {IMG}", PRIV),
    denied("slack-subteam-label-flag", f"run -d <!subteam^S1|--network=host> {IMG}", NET),
    # --- containers outside the policy's scope ----------------------------------------------------------
    denied("scope-stop", "stop %EXT%", SCOPE),
    denied("scope-stop-timeout", "stop -t 1 %EXT%", SCOPE),
    denied("scope-rm", "rm -f %EXT%", SCOPE),
    denied("scope-container-rm", "container rm -f %EXT%", SCOPE),
    denied("scope-rm-dry-run", "rm --dry-run -f %EXT%", SCOPE),
    denied("scope-logs", "logs %EXT%", SCOPE),
    denied("scope-logs-tail", "logs --tail 5 %EXT%", SCOPE),
    denied("scope-exec", "exec %EXT% id", SCOPE),
    denied("scope-exec-detached", "exec -d %EXT% sh -c 'kill 1'", SCOPE),
    denied("scope-inspect", "inspect %EXT%", SCOPE),
    denied("scope-top", "top %EXT%", SCOPE),
    denied("scope-port", "port %EXT%", SCOPE),
    denied("scope-start", "start %EXT%", SCOPE),
    denied("scope-restart", "restart %EXT%", SCOPE),
    denied("scope-stats", "stats %EXT%", SCOPE),
    denied("scope-network-connect", "network connect %NET% %EXT%", SCOPE),
    denied("scope-network-disconnect", "network disconnect bridge %EXT%", SCOPE),
    denied("scope-rm-mixed-comma", "rm -f %WEB%, %EXT%", SCOPE),
    denied("scope-stop-mixed", "stop %WEB% %EXT%", SCOPE),
    denied("protect-stop", "stop %PROT%", PROTECT),
    denied("protect-rm", "rm -f %PROT%", PROTECT),
    denied("protect-logs", "logs %PROT%", PROTECT),
    denied("protect-exec", "exec %PROT% sh", PROTECT),
    denied("protect-inspect", "inspect %PROT%", PROTECT),
    denied("protect-top", "top %PROT%", PROTECT),
    denied("protect-port", "port %PROT%", PROTECT),
    denied("protect-restart", "restart %PROT%", PROTECT),
    denied("protect-network-connect", "network connect %NET% %PROT%", PROTECT),
    denied("other-team-stop-id12", "stop %OTHER12%", SCOPE),
    denied("other-team-rm-id6", "rm -f %OTHER6%", SCOPE),
    denied("other-team-logs-full-id", "logs %OTHERID%", SCOPE),
    denied("other-team-exec-id12", "exec %OTHER12% cat /etc/passwd", SCOPE),
    denied("other-team-inspect-id10", "inspect %OTHER10%", SCOPE),
    denied("other-team-top", "top %OTHER12%", SCOPE),
    denied("other-team-port", "port %OTHER12%", SCOPE),
    denied("other-team-stats", "stats %OTHER12%", SCOPE),
    denied("other-team-network-connect", "network connect %NET% %OTHER12%", SCOPE),
    # --- what a viewer may not do ----------------------------------------------------------------------
    denied("viewer-logs-out-of-scope", "logs %EXT%", SCOPE, actor="viewer"),
    denied("viewer-inspect-protected", "inspect %PROT%", PROTECT, actor="viewer"),
    denied("viewer-stop", "stop %WEB%", DENY, actor="viewer"),
    denied("viewer-rm", "rm -f %EXT%", DENY, actor="viewer"),
    denied("viewer-exec", "exec %WEB% id", DENY, actor="viewer"),
    denied("viewer-run", f"run -d {IMG}", DENY, actor="viewer"),
    denied("viewer-network-create", "network create %NAME%", DENY, actor="viewer"),
    denied("viewer-dry-run-rm", "--dry-run rm -f %WEB%", DENY, actor="viewer"),
    denied("viewer-env-passthrough", f"run -d -e HOME {IMG}", ENV, actor="viewer"),
    # --- path-traversal-like references ----------------------------------------------------------------
    usage("trav-stop", "stop ../../images/x", says="invalid container name"),
    usage("trav-logs", "logs ../../containers/json", says="invalid container name"),
    usage("trav-inspect-encoded", "inspect ..%2f..%2fimages", says="invalid container name"),
    usage("trav-rm", "rm -f ../../../", says="invalid container name"),
    usage("trav-network-rm", "network rm ../networks/x", says="invalid network name"),
    usage("trav-network-inspect", "network inspect ../../x", says="invalid network name"),
    usage("trav-leading-slash", "stop /%EXT%", says="invalid container name"),
    usage("trav-exec", "exec ../%WEB% id", says="invalid container name"),
    usage("trav-query-string", "inspect %WEB%?size=1", says="invalid container name"),
    usage("trav-fragment", "logs %WEB%#x", says="invalid container name"),
    usage("trav-suffix", "top %WEB%/../../x", says="invalid container name"),
]

CLI_CASES = (
    "priv-long",
    "net-eq-host",
    "v-docker-socket",
    "cap-add-eq-all",
    "img-nginx-digest",
    "dash-u2010-hyphen",
    "sh-semicolon",
    "huge-100kb",
    "slack-forged-mention-first",
    "scope-stop",
    "protect-rm",
    "trav-stop",
)


def _fill(text: str, targets: Targets, name: Any) -> str:
    replacements = {**targets.tokens(), "%MARK%": str(MARKER)}
    for token, value in replacements.items():
        text = text.replace(token, value)
    while "%NAME%" in text:
        text = text.replace("%NAME%", name("hostile"), 1)
    return text


# -------------------------------------------------------------------------------- engine state


@dataclass(frozen=True)
class Snapshot:
    containers: dict[str, dict[str, Any]]
    networks: dict[str, dict[str, Any]]


def _snapshot(client: docker.DockerClient) -> Snapshot:
    return Snapshot(
        containers={c["Id"]: c for c in client.api.containers(all=True)},
        networks={n["Id"]: n for n in client.api.networks()},
    )


def _ours(entry: dict[str, Any]) -> bool:
    names = [str(n).lstrip("/") for n in entry.get("Names") or [entry.get("Name", "")]]
    return any(n.startswith(PREFIX) for n in names)


def _side_effects(
    before: Snapshot, after: Snapshot, sent: list[tuple[str, str]], targets: Targets
) -> tuple[list[str], list[str]]:
    """(side effects, foreign changes). Changes made by other processes on the shared engine are foreign:
    they carry no name of this session and this process sent no request that could have made them."""
    effects = [f"{method} {path}" for method, path in sent]
    foreign: list[str] = []
    for kind, old, new in (
        ("container", before.containers, after.containers),
        ("network", before.networks, after.networks),
    ):
        for ident in sorted(set(old) ^ set(new)):
            entry = new.get(ident) or old[ident]
            what = f"{kind} {ident[:12]} {'appeared' if ident in new else 'vanished'}"
            (effects if _ours(entry) or sent else foreign).append(what)
    for container in targets.containers():
        state = after.containers.get(container.id, {}).get("State")
        if state != "running":
            effects.append(f"fixture {container.name} is {state or 'gone'}")
    return effects, foreign


# -------------------------------------------------------------------------------- the corpus


@pytest.fixture
def hostile_pipeline(spy_engine: SpyEngine, team_policy: Policy) -> Any:
    return make_pipeline(spy_engine, team_policy, run_timeout=10, exec_timeout=5)


def _check_outcome(case: Case, outcome: Outcome) -> None:
    assert not outcome.ok, f"{case.id}: accepted: {outcome.text!r}"
    assert outcome.error is not None
    assert outcome.error.kind != "internal", f"{case.id}: internal error: {outcome.error.message}"
    assert outcome.error.kind == case.kind, (
        f"{case.id}: expected {case.kind} {case.rule or ''}, got {outcome.error.kind} "
        f"{outcome.error.rule or ''}: {outcome.error.message}"
    )
    assert outcome.error.message.strip()
    if case.kind == "denied":
        assert outcome.error.rule == case.rule, f"{case.id}: rule {outcome.error.rule}: {outcome.error.message}"
    if case.says is not None:
        assert case.says in outcome.error.message, f"{case.id}: {outcome.error.message!r}"


@pytest.mark.parametrize("case", CORPUS, ids=[c.id for c in CORPUS])
def test_hostile_input_is_refused_without_side_effects(
    case: Case,
    hostile_pipeline: Any,
    spy_engine: SpyEngine,
    docker_client: docker.DockerClient,
    targets: Targets,
    name: Any,
) -> None:
    text = _fill(case.text, targets, name)
    actor = ADMIN if case.actor == "admin" else VIEWER
    before = _snapshot(docker_client)
    spy_engine.sent.clear()
    outcome = hostile_pipeline.handle(text, actor)
    mutations = spy_engine.mutations()
    after = _snapshot(docker_client)
    effects, foreign = _side_effects(before, after, mutations, targets)
    if MARKER.exists():
        effects.append(f"marker file {MARKER} was created")

    TALLY.tried += 1
    TALLY.side_effects += len(effects)
    if outcome.error is not None:
        TALLY.kinds[outcome.error.kind] += 1
        if outcome.error.rule:
            TALLY.rules[outcome.error.rule] += 1
    if not outcome.ok and outcome.error is not None and outcome.error.kind in ("denied", "usage"):
        TALLY.refused += 1
    else:
        TALLY.problems.append(f"{case.id}: not refused ({outcome.error.kind if outcome.error else 'ok'})")
    if effects:
        TALLY.problems.append(f"{case.id}: {effects}")
    if foreign:
        print(f"{case.id}: changes by other processes on the shared engine (ignored): {foreign}")

    _check_outcome(case, outcome)
    assert not effects, f"{case.id}: side effects: {effects}"


def test_corpus_is_large_and_ids_are_unique() -> None:
    ids = [c.id for c in CORPUS]
    assert len(ids) >= 150
    assert len(set(ids)) == len(ids)
    assert all(c.rule for c in CORPUS if c.kind == "denied")
    assert set(CLI_CASES) <= set(ids)
    assert sum(1 for c in CORPUS if c.actor == "viewer") >= 10


# -------------------------------------------------------------------------------- through the CLI


def _chatdock() -> list[str]:
    found = shutil.which("chatdock")
    return [found] if found else [sys.executable, "-m", "bot"]


@pytest.mark.parametrize("case_id", CLI_CASES)
def test_cli_prints_one_json_refusal_and_exits_like_docker(
    case_id: str,
    tmp_path: Path,
    docker_client: docker.DockerClient,
    targets: Targets,
    name: Any,
) -> None:
    case = next(c for c in CORPUS if c.id == case_id)
    policy_file = tmp_path / "policy.yml"
    policy_file.write_text(TEST_POLICY)
    text = _fill(case.text, targets, name)
    env = {
        **os.environ,
        "CHATDOCK_DB": str(tmp_path / "audit.db"),
        "CHATDOCK_LOG_LEVEL": "ERROR",
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }
    env.pop("CHATDOCK_POLICY", None)
    before = _snapshot(docker_client)
    done = subprocess.run(
        [
            *_chatdock(),
            "shell",
            "--json",
            "--policy",
            str(policy_file),
            "--as",
            "UADMIN",
            "--channel",
            "C1",
            "-c",
            text,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=env,
        check=False,
    )
    after = _snapshot(docker_client)
    TALLY.cli_tried += 1
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, f"stdout: {done.stdout!r} stderr: {done.stderr[-2000:]!r}"
    document = json.loads(lines[0])
    assert isinstance(document, dict)
    assert document["ok"] is False
    assert document["error"]["kind"] == case.kind, document["error"]
    if case.kind == "denied":
        assert document["error"]["rule"] == case.rule
    # docker run exits 125 when it started nothing (bad option, refused by the daemon); other commands 1
    names_run = re.match(r"\s*(/?docker\s+)?(container\s+)?run\b", text) is not None
    assert done.returncode == (125 if names_run else 1), text
    effects, _ = _side_effects(before, after, [], targets)
    assert not [e for e in effects if "appeared" in e or "fixture" in e], effects
    assert not MARKER.exists()
    TALLY.cli_refused += 1


# -------------------------------------------------------------------------------- the tally


def test_zz_corpus_tally() -> None:
    """Runs last in this module: every case tried was refused and nothing changed on the engine."""
    if TALLY.tried == 0:
        pytest.skip("no corpus case ran in this session")
    print(TALLY.line())
    assert not MARKER.exists()
    assert TALLY.side_effects == 0, TALLY.problems
    assert TALLY.refused == TALLY.tried, TALLY.problems
    assert TALLY.cli_refused == TALLY.cli_tried
    if TALLY.tried == len(CORPUS):
        assert TALLY.tried >= 150
