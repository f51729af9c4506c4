"""`live doctor`: one screen of what will run here and what will not, each problem with its fix."""

from __future__ import annotations

import json
from dataclasses import dataclass

from live.cli.arguments import add_command
from live.options import option

MARKS = {True: "ok ", False: "NO ", None: " - "}


@dataclass
class DoctorCommand:
    json: bool = option(False, "print the checks as JSON")


def register(sub) -> None:
    add_command(sub, "doctor", doctor, "what will run here and what will not, each problem with its fix",
                DoctorCommand, description="Checks torch and the GPU (a CPU-only torch beside an NVIDIA card, a CUDA "
                "build the card is not supported by), fp16/bf16, CuPy against torch's CUDA, TensorRT, OpenVINO, ONNX "
                "Runtime, mediapipe's bundled models, the identity models, cameras, virtual cameras (v4l2loopback and "
                "its exclusive_caps), audio, the display, the model cache and free disk. Exit status 0 when the main "
                "job (`live run`) can run; a line marked NO says what stops it and how to fix it.")


def doctor(opts: DoctorCommand, cfg) -> int:
    from live.cli.doctor_probes import diagnose
    checks = diagnose()
    if opts.json:
        print(json.dumps([c.as_dict() for c in checks], indent=1))
    else:
        for c in checks:
            print(f"{MARKS[c.ok]} {c.area:<15} {c.detail}" + (f"\n{'':20}fix: {c.fix}" if c.fix and c.ok is not True else ""))
        blocking = [c for c in checks if c.ok is False]
        print("\nlive run can run here." if not blocking else f"\n{len(blocking)} problem(s) stop live run: see NO above.")
    return 1 if any(c.ok is False for c in checks) else 0
