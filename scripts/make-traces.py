#!/usr/bin/python3
"""Writes the example traces of `kiln simulate` (examples/traces/):

  month-workload.csv   30 days of step arrivals (arrival_s,environment,tiles),
                       starting on a Monday at 00:00:
                       - weekdays 08:00-18:00: interactive ingests, about 14 an
                         hour at the morning and afternoon peaks, fewer at the
                         edges and at lunch; sizes log-normal around 3,000 tiles
                       - every night from 01:00: a batch of 25 (weekends: 8)
                         larger ingests submitted over 20 minutes, ~20,000 tiles
                       - weekends otherwise idle but for a few small steps
                       70% production, 30% staging.
  spot-month.csv       hourly spot price and interruption rate
                       (t_s,price_per_hour,interruptions_per_node_hour): about
                       a third of the 0.40 on-demand price with a slow drift,
                       and three spikes of a few hours where the price nears
                       on-demand and interruptions are ten times likelier.

Deterministic (fixed seed): running it again writes the same bytes.

    /usr/bin/python3 scripts/make-traces.py [OUT_DIR]
"""

import math
import os
import random
import sys

DAY = 86400
HOUR = 3600


def lognormal(rng, median, sigma, cap):
    return int(min(cap, max(50, rng.lognormvariate(math.log(median), sigma))))


def workload(rng):
    rows = []
    for day in range(30):
        weekday = day % 7 < 5
        base = day * DAY
        # Nightly batch.
        batch = 25 if weekday else 8
        for _ in range(batch):
            t = base + HOUR + rng.uniform(0, 20 * 60)
            rows.append((t, "production", lognormal(rng, 20000, 0.6, 200000)))
        if weekday:
            for hour in range(8, 18):
                # Two peaks (10-12, 14-16), a dip at lunch.
                rate = {8: 6, 9: 10, 10: 14, 11: 14, 12: 8, 13: 10, 14: 14, 15: 14, 16: 10,
                        17: 6}[hour]
                t = base + hour * HOUR
                while True:
                    t += rng.expovariate(rate / HOUR)
                    if t >= base + (hour + 1) * HOUR:
                        break
                    env = "production" if rng.random() < 0.7 else "staging"
                    rows.append((t, env, lognormal(rng, 3000, 1.0, 100000)))
        else:
            for _ in range(rng.randint(2, 4)):
                t = base + rng.uniform(9 * HOUR, 20 * HOUR)
                rows.append((t, "staging", lognormal(rng, 1500, 0.8, 20000)))
    rows.sort()
    return rows


def spot(rng):
    rows = []
    price = 0.13
    spikes = [(4 * DAY + 14 * HOUR, 5), (13 * DAY + 9 * HOUR, 3), (22 * DAY + 2 * HOUR, 6)]
    for h in range(30 * 24 + 1):
        t = h * HOUR
        price = min(0.16, max(0.11, price + rng.gauss(0, 0.003)))
        p, rate = price, 0.02
        for start, hours in spikes:
            if start <= t < start + hours * HOUR:
                p, rate = 0.34 + rng.uniform(0, 0.04), 0.2
        rows.append((t, round(p, 4), rate))
    return rows


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "examples", "traces")
    os.makedirs(out, exist_ok=True)
    rng = random.Random(20261124)
    with open(os.path.join(out, "month-workload.csv"), "w", encoding="utf-8") as f:
        f.write("arrival_s,environment,tiles\n")
        for t, env, tiles in workload(rng):
            f.write("%.1f,%s,%d\n" % (t, env, tiles))
    with open(os.path.join(out, "spot-month.csv"), "w", encoding="utf-8") as f:
        f.write("t_s,price_per_hour,interruptions_per_node_hour\n")
        for t, p, rate in spot(rng):
            f.write("%d,%.4f,%.3f\n" % (t, p, rate))


if __name__ == "__main__":
    main()
