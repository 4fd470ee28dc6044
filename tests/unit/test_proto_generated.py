"""The generated gRPC code is reproducible from proto/*.proto."""

import subprocess
import sys


def test_generated_code_matches_proto_files():
    done = subprocess.run([sys.executable, "-m", "meridian.proto.generate", "--check"], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
