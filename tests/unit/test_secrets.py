"""No secret is committed (SPEC §1): the repository's files are scanned for credentials.

Scanned: every file git tracks, plus untracked files that are not git-ignored (what the next
commit could add). Found: AWS access key ids, private key blocks, provider tokens, URLs with an
inline password, and password/secret/token assignments with a literal value in code and config.
Not found: placeholders (`change-me`, `<password>`, `@@NAME@@`), values taken from the environment
(`${VAR}`, `$VAR`), f-string fields, and the explicit allow-list below. A line may also carry
`pragma: allowlist secret` (detect-secrets' marker) for a fake test credential that must stay literal.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MAX_BYTES = 2_000_000

# (path, value) -> why it is not a secret. Keep it short: prefer generating test credentials at runtime.
ALLOWED: dict[tuple[str, str], str] = {
    ("tests/unit/test_feast_env.py", "s3cr%27t%20pw"): "fake password of the URL-parsing test (never a real server)",
}

PRAGMA = "pragma: allowlist secret"

# a value that only names or stands for a secret
_PLACEHOLDER = re.compile(
    r"(?i)change[-_ ]?me.*|replace[-_ ]?me.*|<[^<>]+>|x{3,}|\*{3,}|\.{3}|(?:your|my)[-_].*"
    r"|example|dummy|placeholder|redacted|none|null|~|true|false|\d+(?:\.\d+)?"
    r"|pw|pass|passwd|password|secret|token|@@[A-Z0-9_]+@@"
    # deliberately not the credential (a test of a refused login)
    r"|wrong|invalid|incorrect|fake|bogus|not[-_ ]a[-_ ].*"
    # a fully qualified class name (a credentials *provider*, e.g. software.amazon.awssdk….Provider)
    r"|[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)+\.[A-Z]\w*"
)
_TEMPLATE_FIELD = re.compile(r"\{[A-Za-z_][\w.]*(?:![rsa])?(?::[^{}]*)?\}")
# keys that name a secret; a key ending in one of NOT_SECRET_SUFFIX names something about it instead
_SECRET_KEY = r"[A-Za-z0-9_.-]*(?:password|passwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|fernet[_-]?key|credentials?)[A-Za-z0-9_.-]*"
NOT_SECRET_SUFFIX = re.compile(r"(?i)[_.-](?:id|user|username|name|file|path|url|uri|cmd|placeholder|env|var|header|type|ttl|length|expiry)$")

_URL_PASSWORD = re.compile(r"\b[a-z][a-z0-9+.-]*://(?P<user>[^\s:/@'\"`<>]*):(?P<value>[^\s@/'\"`<>]+)@[\w.\[-]")
_ALWAYS = [
    ("aws-access-key-id", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("private-key", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY(?: BLOCK)?-----")),
    ("github-token", re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b")),
    ("slack-token", re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}\b")),
]
# `key = "literal"`, `key: str = 'literal'`, `f(key="literal")`, `{"key": "literal"}`
_PY_ASSIGN = re.compile(rf"(?i)\b(?P<key>{_SECRET_KEY})\b\s*(?::\s*[\w\[\]|. ]+?)?\s*=(?!=)\s*[rbu]?(?P<q>[\"'])(?P<value>[^\"'\n]*)(?P=q)")
_DICT_ENTRY = re.compile(rf"(?i)(?P<kq>[\"'])(?P<key>{_SECRET_KEY})(?P=kq)\s*:\s*(?P<q>[\"'])(?P<value>[^\"'\n]*)(?P=q)")
# `key: value` (YAML), `KEY=value` / `export KEY=value` / `ENV KEY=value` (env, shell, Dockerfile, lists in YAML)
_YAML_ENTRY = re.compile(rf"(?i)^\s*(?:-\s+)?[\"']?(?P<key>{_SECRET_KEY})[\"']?\s*:\s+(?P<value>[^#\n]*?)\s*(?:\s#.*)?$")
_ENV_ENTRY = re.compile(rf"(?i)^\s*(?:-\s+|export\s+|ENV\s+|ARG\s+)?[\"']?(?P<key>{_SECRET_KEY})\s*=\s*(?P<value>[^#\n]*?)\s*(?:\s#.*)?$")
# `key = "value"` (TOML, INI)
_TOML_ENTRY = re.compile(rf"(?i)^\s*[\"']?(?P<key>{_SECRET_KEY})[\"']?\s*=\s*(?P<value>[^#\n]*?)\s*(?:\s#.*)?$")


def _assignment_rules(path: str) -> list[re.Pattern]:
    name = Path(path).name
    suffix = Path(path).suffix.lower()
    if suffix in (".py", ".pyi"):
        return [_PY_ASSIGN, _DICT_ENTRY]
    if suffix in (".yaml", ".yml"):
        return [_YAML_ENTRY, _ENV_ENTRY]
    if suffix == ".json":
        return [_DICT_ENTRY]
    if suffix in (".toml", ".ini", ".cfg", ".conf", ".properties"):
        return [_TOML_ENTRY]
    if name.startswith(".env") or suffix in (".env", ".sh", ".bash") or name in ("Dockerfile", "Makefile"):
        return [_ENV_ENTRY]
    return []


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    rule: str
    value: str

    def __str__(self) -> str:
        shown = self.value[:3] + "…" if len(self.value) > 3 else "…"  # enough to find it, not to use it
        return f"{self.path}:{self.line}: {self.rule} ({shown})"


def is_placeholder(value: str) -> bool:
    """True for a value that is not itself a secret: empty, a placeholder, or taken from elsewhere."""
    v = value.strip().strip("\"'").strip()
    if not v or _PLACEHOLDER.fullmatch(v):
        return True
    # the environment (${VAR}, $VAR, $(cmd)), templates ({{ x }}, {field}, %(x)s), YAML anchors/flow
    if v.startswith(("$", "{", "[", "&", "*", "%(", "|", ">")) or "${" in v or "{{" in v:
        return True
    return bool(_TEMPLATE_FIELD.search(v))  # an f-string or str.format field inside the value


def find_secrets(path: str, text: str) -> list[Finding]:
    """Every likely secret in one file's text."""
    findings = []
    rules = _assignment_rules(path)
    for number, line in enumerate(text.splitlines(), 1):
        if PRAGMA in line:
            continue
        for rule, pattern in _ALWAYS:
            findings += [Finding(path, number, rule, m.group(0)) for m in pattern.finditer(line)]
        for m in _URL_PASSWORD.finditer(line):
            if not is_placeholder(m.group("value")):
                findings.append(Finding(path, number, "url-with-password", m.group("value")))
        for pattern in rules:
            for m in pattern.finditer(line):
                if not NOT_SECRET_SUFFIX.search(m.group("key")) and not is_placeholder(m.group("value")):
                    findings.append(Finding(path, number, f"literal {m.group('key')}", m.group("value")))
    return [f for f in findings if (f.path, f.value.strip("\"'")) not in ALLOWED]


def repository_files(root: Path) -> list[str]:
    """Tracked files, and untracked ones git does not ignore."""
    result = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            check=False, cwd=root, capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"not a git checkout: {result.stderr.strip()}")
    return sorted({p for p in result.stdout.split("\0") if p})


def scan(root: Path) -> list[Finding]:
    findings = []
    for relative in repository_files(root):
        path = root / relative
        if not path.is_file() or path.stat().st_size > MAX_BYTES:  # deleted in the work tree, or data
            continue
        data = path.read_bytes()
        if b"\0" in data[:8192]:  # binary
            continue
        findings += find_secrets(relative, data.decode("utf-8", errors="replace"))
    return findings


def test_no_secret_in_the_repository() -> None:
    files = repository_files(ROOT)
    assert "docker-compose.yaml" in files and "pyproject.toml" in files  # the scan sees the repository
    findings = scan(ROOT)
    assert not findings, "committed secrets (move them to .env or the environment):\n" + "\n".join(map(str, findings))


def test_allow_list_entries_still_exist() -> None:
    """An allow-list entry whose value left its file is stale: remove it."""
    for path, value in ALLOWED:
        assert value in (ROOT / path).read_text(), f"stale allow-list entry {path}: {value!r}"


# ---------------------------------------------------------------- the detector on bad strings
# Bad samples are assembled at runtime, so this file never holds a matching literal itself.

PW = "pass" + "word"
AKIA = "AK" + "IA"
S = "hunt" + "er2"  # a sample secret
BEGIN = "-----BEGIN "


@pytest.mark.parametrize(
    ("path", "text", "rule"),
    [
        ("config.py", f"AWS_KEY = '{AKIA}Q3EXAMPLEZ7K2LMN'", "aws-access-key-id"),
        ("notes.md", f"temporary creds: ASIA{'Z' * 16}", "aws-access-key-id"),
        ("deploy/key.pem", f"{BEGIN}RSA PRIVATE KEY-----\nMIIEow", "private-key"),
        ("id_ed25519", f"{BEGIN}OPENSSH PRIVATE KEY-----", "private-key"),
        ("app.yaml", f"url: redis://:{S}-prod@cache.internal:6379/0", "url-with-password"),
        ("settings.py", f"DSN = 'postgresql+psycopg2://airflow:{S}@db:5432/airflow'", "url-with-password"),
        ("settings.py", f"DB_{PW.upper()} = \"Tr0ub4dor&3\"", f"literal DB_{PW.upper()}"),
        ("client.py", f"connect(host='h', {PW}='hunter2')", f"literal {PW}"),
        ("client.py", f"opts = {{'api_key': 'sk-live-{S}'}}", "literal api_key"),
        ("docker-compose.yml", f"      POSTGRES_{PW.upper()}: airflow", f"literal POSTGRES_{PW.upper()}"),
        ("docker-compose.yml", f"      - REDIS_{PW.upper()}=s3cret-value", f"literal REDIS_{PW.upper()}"),
        (".env", "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "literal AWS_SECRET_ACCESS_KEY"),
        ("pyproject.toml", "token = \"pypi-AgEIcHlwaS5vcmc\"", "literal token"),
        ("Dockerfile", "ENV FERNET_KEY=46BKJoQYlPPOexq0OhDZnIlNepKFf87WFwLbfzqDDho=", "literal FERNET_KEY"),
        ("ci.sh", f"export GH_TOKEN=gh{'p'}_{'a' * 36}", "github-token"),
    ],
)
def test_detector_finds(path: str, text: str, rule: str) -> None:
    assert rule in {f.rule for f in find_secrets(path, text)}, find_secrets(path, text)


@pytest.mark.parametrize(
    ("path", "text"),
    [
        (".env.example", f"REDIS_{PW.upper()}=change-me"),
        ("docker-compose.yaml", f"      POSTGRES_{PW.upper()}: ${{AIRFLOW_DB_{PW.upper()}:?set it}}"),
        ("docker-compose.yaml", "      BROKER: redis://:${REDIS_PASSWORD}@redis:6379/1"),
        ("docker-compose.yaml", "      AWS_ACCESS_KEY_ID: featurepipe"),  # an id, not a secret
        ("app.py", f"{PW} = os.environ['REDIS_{PW.upper()}']"),  # from the environment
        ("app.py", f"{PW} = secrets.token_hex(16)"),  # generated at runtime
        ("app.py", f"parts.append(f'{PW}={{secret}}')"),  # an f-string field
        ("app.py", f"{PW.upper()}_PLACEHOLDER = '@@REDIS_{PW.upper()}@@'"),
        ("app.py", "token: str"),
        ("app.py", "S3A_CREDENTIALS = 'software.amazon.awssdk.auth.credentials.DefaultCredentialsProvider'"),
        ("app.py", "ok = found.token == expected_token"),
        ("app.py", "'''`redis://[:pw@]host:port/db`'''"),
        ("README.md", f"{PW}: hunter2"),  # prose: only the always-on rules apply
        ("app.yaml", f"{PW}: <your {PW}>"),
        ("test_x.py", f"URL = 'redis://:{S}@localhost'  # {PRAGMA}"),
    ],
)
def test_detector_ignores(path: str, text: str) -> None:
    assert find_secrets(path, text) == []


def test_scan_reads_the_files_git_would_commit(tmp_path) -> None:
    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / ".gitignore").write_text(".env\n")
    (tmp_path / ".env").write_text(f"REDIS_{PW.upper()}=real-one-stays-local\n")  # ignored: fine
    (tmp_path / "app.yaml").write_text(f"db:\n  {PW}: Tr0ub4dor\n")  # untracked, not ignored
    (tmp_path / "tracked.py").write_text(f"KEY = '{AKIA}Q3EXAMPLEZ7K2LMN'\n")
    git("add", "tracked.py")
    assert [(f.path, f.line, f.rule) for f in scan(tmp_path)] == [
        ("app.yaml", 2, f"literal {PW}"),
        ("tracked.py", 1, "aws-access-key-id"),
    ]
    # a finding never prints the whole secret
    assert "Tr0ub4dor" not in str(scan(tmp_path)[0])
