"""Generates the rollout benchmark's repository, deterministically: about 10,000 text files and
100 MB of working tree in one commit on `main`, written with `git fast-import` into a bare repo.

    python gen_repo.py DEST.git [FILES] [MEGABYTES]
"""
import os
import random
import subprocess
import sys

WORDS = ("fn let mut pub struct impl self match return async await error result option vec string "
         "config queue worker lease retry mirror sandbox agent check publish comment issue request "
         "payload signature verify delivery token branch commit workspace container limit memory "
         "timeout retry_later dead_letter outstanding claim finish enqueue parse render").split()


def main():
    dest = sys.argv[1]
    files = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000
    megabytes = int(sys.argv[3]) if len(sys.argv) > 3 else 100
    rng = random.Random(20261124)
    pool = []
    for _ in range(4000):
        indent = "    " * rng.randint(0, 3)
        pool.append((indent + " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12))) + "\n").encode())
    avg = megabytes * 1024 * 1024 // files
    subprocess.run(["git", "init", "--quiet", "--bare", "--initial-branch=main", dest], check=True)
    fi = subprocess.Popen(["git", "fast-import", "--quiet"], cwd=dest, stdin=subprocess.PIPE)
    out = fi.stdin
    paths = []
    exts = [".rs", ".py", ".md", ".txt", ".toml", ".json"]
    for i in range(files):
        size = max(200, int(rng.expovariate(1 / avg))) if i % 10 else avg
        chunks, n = [f"// file {i}\n".encode()], 0
        while n < size:
            line = pool[rng.randrange(len(pool))]
            chunks.append(line)
            n += len(line)
        data = b"".join(chunks)
        out.write(b"blob\nmark :%d\ndata %d\n" % (i + 1, len(data)) + data + b"\n")
        paths.append(f"src/m{i % 97:02d}/s{(i // 97) % 13:02d}/file_{i:05d}{exts[i % len(exts)]}")
    message = b"generated benchmark repository\n"
    out.write(b"commit refs/heads/main\ncommitter Bench <bench@localhost> 1795500000 +0000\n")
    out.write(b"data %d\n%s" % (len(message), message))
    for i, path in enumerate(paths):
        out.write(b"M 100644 :%d %s\n" % (i + 1, path.encode()))
    out.write(b"\n")
    out.close()
    if fi.wait() != 0:
        raise SystemExit("git fast-import failed")
    subprocess.run(["git", "symbolic-ref", "HEAD", "refs/heads/main"], cwd=dest, check=True)


if __name__ == "__main__":
    main()
