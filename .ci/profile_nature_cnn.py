"""Where the Nature CNN's vanilla backward and woodbury time go on a device (torch.profiler, 3 runs after 2 warm-ups).

Usage: python3 .ci/profile_nature_cnn.py [cpu|cuda] [N]  (run from the repo root, ratbench importable)
"""
import sys
import torch
from torch.profiler import ProfilerActivity, profile
from ratbench.benchmarking import speed as sp

device = torch.device(sys.argv[1] if len(sys.argv) > 1 else "cuda")
n = int(sys.argv[2]) if len(sys.argv) > 2 else 1024
activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
key = "cuda_time_total" if device.type == "cuda" else "cpu_time_total"
problem = sp.build_problem(n, 512, "nature-cnn", device, 0)
for method in ["vanilla", "woodbury"]:
    run = sp.method_runner(method, problem)
    for _ in range(2):
        run()
    with profile(activities=activities) as prof:
        for _ in range(3):
            run()
    print(f"== nature-cnn N={n} {method} on {device}: sorted by {key}")
    print(prof.key_averages().table(sort_by=key, row_limit=22, max_name_column_width=55))
    if device.type == "cuda":
        print(prof.key_averages().table(sort_by="cpu_time_total", row_limit=10, max_name_column_width=55))
