"""What a Lambda cold start costs here: import and create_app, an RSA key, bcrypt by cost.

    python -m deploy.cold_start    (prints figures; run it on the machine in question)

Lambda gives a function CPU in proportion to its memory (one full vCPU at 1,769 MB), so a
figure measured on one core here scales roughly by 1769 / MemorySize below that size.
"""

import os
import subprocess
import sys
import time

import bcrypt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

FULL_VCPU_MB = 1769
SIZES_MB = (512, 1024, 1769, 3008)


def seconds(action: object, repeat: int = 3) -> float:
    """The best of `repeat` runs of a no-argument callable."""
    assert callable(action)
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - started)
    return best


def import_and_create_app(service: str) -> float:
    """A fresh interpreter importing the service and building its app (no request served)."""
    code = (
        "import time; t = time.perf_counter(); "
        f"from {service}_service.main import create_app; create_app(); "
        "print(time.perf_counter() - t)"
    )
    env = {**os.environ, "ENVIRONMENT": "development", "LOG_LEVEL": "WARNING"}
    result = subprocess.run(  # noqa: S603 - this interpreter, fixed code
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    return float(result.stdout.strip().splitlines()[-1])


def main() -> None:
    print(f"python {sys.version.split()[0]}, cpus {os.cpu_count()}")
    for service in ("auth", "users"):
        best = min(import_and_create_app(service) for _ in range(3))
        print(f"import + create_app ({service}): {best * 1000:.0f} ms")

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"key-encryption-key"),
    )
    generate = seconds(lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048))
    load = seconds(lambda: serialization.load_pem_private_key(pem, b"key-encryption-key"), 10)
    print(
        f"RSA-2048 generate: {generate * 1000:.0f} ms, load (encrypted PEM): {load * 1000:.1f} ms"
    )

    for cost in (10, 12):
        salt = bcrypt.gensalt(rounds=cost)
        taken = seconds(lambda salt=salt: bcrypt.hashpw(b"correct horse battery staple", salt))
        scaled = ", ".join(
            f"{size} MB ~{taken * max(1.0, FULL_VCPU_MB / size) * 1000:.0f} ms" for size in SIZES_MB
        )
        print(f"bcrypt cost {cost}: {taken * 1000:.0f} ms here; on Lambda {scaled}")


if __name__ == "__main__":
    main()
