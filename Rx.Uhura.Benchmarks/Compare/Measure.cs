using System.Diagnostics;

namespace Rx.Uhura.Benchmarks.Compare;

/// <summary>Helpers shared by the C# contenders.</summary>
internal static class Measure
{
    /// <summary>Managed heap after a full collection, and the process working set.</summary>
    public static (long Managed, long WorkingSet) Memory()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        var managed = GC.GetTotalMemory(forceFullCollection: true);
        using var process = Process.GetCurrentProcess();
        process.Refresh();
        return (managed, process.WorkingSet64);
    }

    /// <summary>Bytes allocated by every thread of the process so far (precise).</summary>
    public static long AllocatedBytes() => GC.GetTotalAllocatedBytes(precise: true);

    public static double Percentile(List<double> sorted, double p)
    {
        if (sorted.Count == 0)
        {
            return 0;
        }

        var rank = (int)Math.Ceiling(p / 100.0 * sorted.Count) - 1;
        return sorted[Math.Clamp(rank, 0, sorted.Count - 1)];
    }

    public static double Microseconds(long ticks) => ticks * 1_000_000.0 / Stopwatch.Frequency;

    public static ScenarioResult Throughput(int events, TimeSpan elapsed) =>
        new(new Metric("events/s", "events/s", events / elapsed.TotalSeconds, HigherIsBetter: true));

    public static ScenarioResult Rtt(List<double> samplesUs)
    {
        samplesUs.Sort();
        return new ScenarioResult(
            new Metric("p50", "us", Percentile(samplesUs, 50), HigherIsBetter: false),
            new Metric("p99", "us", Percentile(samplesUs, 99), HigherIsBetter: false));
    }

    /// <summary>Fanout: broadcasts every client receives (and, with acks, acknowledges) before the clock starts; the Socket.IO script's FANOUT_WARMUP.</summary>
    public const int FanoutWarmup = 10;

    public static ScenarioResult Fanout(long deliveries, TimeSpan elapsed, int clients) =>
        new([new Metric("deliveries/s", "deliveries/s", deliveries / elapsed.TotalSeconds, HigherIsBetter: true)], $"{clients} clients");

    public static ScenarioResult Idle((long Managed, long WorkingSet) before, (long Managed, long WorkingSet) after, int connections) =>
        new(
            [
                new Metric("managed/conn", "B/conn", (after.Managed - before.Managed) / (double)connections, HigherIsBetter: false),
                new Metric("working-set/conn", "B/conn", (after.WorkingSet - before.WorkingSet) / (double)connections, HigherIsBetter: false),
            ],
            $"{connections} connections, both ends in one process (client + server side counted together)");

    public static ScenarioResult Allocations(long bytes, int events) =>
        new(
            [new Metric("alloc/event", "B/event", bytes / (double)events, HigherIsBetter: false)],
            "GC.GetTotalAllocatedBytes(true) delta / events, send and receive sides together (whole process)");

    /// <summary>Idle connections the file descriptor limit allows (two sockets per connection, plus headroom).</summary>
    public static int MaxIdleConnections()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/self/limits"))
            {
                if (line.StartsWith("Max open files", StringComparison.Ordinal))
                {
                    var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                    if (long.TryParse(parts[3], out var soft))
                    {
                        return (int)Math.Max(10, (soft - 1_000) / 2);
                    }
                }
            }
        }
        catch (IOException)
        {
        }

        return int.MaxValue;
    }
}
