using System.Diagnostics;

namespace Rx.Uhura.Tests.Core;

/// <summary>The memory tests read process-wide figures: they run by themselves, after the parallel tests.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class OutboundMemoryCollection
{
    public const string Name = "OutboundMemory";
}

/// <summary>
/// What a sender holds for a slow peer is bounded in bytes (<see cref="ConnectionOptions.MaxQueuedBytes"/>), and the
/// buffers a burst needed are let go when it is over, not kept by the connection or by the shared array pool.
/// </summary>
[Collection(OutboundMemoryCollection.Name)]
public sealed class OutboundMemoryTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private const int Events = 10_000;
    private const int EventSize = 100_000;
    private const long MiB = 1024 * 1024;
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(60);

    [Theory]
    [InlineData(WireProtocol.Native)]
    [InlineData(WireProtocol.NodeUhura)]
    public async Task A_flood_of_100_KB_posts_to_a_slow_server_adds_under_256_MB_and_leaves_little_behind_once_acknowledged(WireProtocol wire)
    {
        await using var server = new UhuraServer();
        using var released = new ManualResetEventSlim();
        var received = 0;
        var ended = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        server.Connections.Subscribe(connection => connection.Events.Subscribe(e =>
        {
            released.Wait(Long); // the slow server: it reads nothing more until the test lets it
            if (e.Name == "end")
            {
                ended.TrySetResult();
            }
            else
            {
                received++; // not parsed: the server's own garbage is not what this test measures
            }
        }));
        await server.ListenAsync("tcp://127.0.0.1:0");

        var client = UhuraClient.Connect(server.Uri!, new UhuraClientOptions { Protocol = wire });
        var dropped = 0;
        client.Dropped.Subscribe(_ => Interlocked.Increment(ref dropped));
        try
        {
            await client.WhenConnectedAsync().For();
            var baselineHeap = SettledHeap();
            using var process = Process.GetCurrentProcess();
            process.Refresh();
            var baselineWorkingSet = process.WorkingSet64;
            long peak = baselineWorkingSet;
            var sampling = new Lock();
            var stopped = false;
            void Sample()
            {
                long now;
                lock (sampling)
                {
                    // The timer's thread and the test's both sample: a Process object is not safe to refresh and read
                    // from two threads at once (WorkingSet64 threw a NullReferenceException in a CI run). And a timer
                    // callback can still run after the timer is disposed: once stopped (before the Process is disposed)
                    // it does nothing (one refreshed a disposed Process and crashed the test host in a CI run).
                    if (stopped)
                    {
                        return;
                    }

                    process.Refresh();
                    now = process.WorkingSet64;
                }

                long seen;
                while (now > (seen = Interlocked.Read(ref peak)) && Interlocked.CompareExchange(ref peak, now, seen) != seen)
                {
                }
            }

            var blob = new string('x', EventSize);
            var accepted = new List<int>();
            try
            {
                using (new Timer(_ => Sample(), null, TimeSpan.Zero, TimeSpan.FromMilliseconds(5)))
                {
                    for (var i = 0; i < Events; i++)
                    {
                        if (client.Post("blob", i, blob))
                        {
                            accepted.Add(i);
                        }

                        if (i % 100 == 0)
                        {
                            Sample();
                        }
                    }

                    released.Set();
                    await client.Connection!.WhenAcknowledgedAsync().WaitAsync(Long);
                    var end = client.Send("end");
                    await end.WaitAsync(Long);
                    await ended.Task.WaitAsync(Long);
                    Sample();
                }
            }
            finally
            {
                lock (sampling)
                {
                    stopped = true;
                }
            }

            // Every accepted event arrived (once and in order, as the protocol does); every refused one was reported.
            Assert.Equal(accepted.Count, received);
            Assert.Equal(Events - accepted.Count, Volatile.Read(ref dropped));
            Assert.InRange(accepted.Count, 1, Events - 1); // the bound was reached: the server read nothing meanwhile

            var retained = SettledHeap() - baselineHeap;
            var peakGrowth = Interlocked.Read(ref peak) - baselineWorkingSet;
            output.WriteLine($"{wire}: {accepted.Count} accepted; working set {baselineWorkingSet / MiB} MiB before, peak {peak / MiB} MiB (+{peakGrowth / MiB}); managed heap retained {retained / MiB} MiB");

            // The test host's own footprint (and what earlier tests left in its heap) is not the flood's: the bound is on
            // what the flood adds, client and server together, over the working set measured just before it.
            Assert.True(peakGrowth < 256 * MiB, $"peak working set {peak / MiB} MiB (baseline {baselineWorkingSet / MiB} MiB, growth {peakGrowth / MiB} MiB)");
            Assert.True(retained < 16 * MiB, $"{retained / MiB} MiB of managed heap retained after everything was acknowledged");
        }
        finally
        {
            released.Set();
            client.Dispose();
        }
    }

    private static long SettledHeap()
    {
        for (var i = 0; i < 2; i++)
        {
            GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
            GC.WaitForPendingFinalizers();
        }

        return GC.GetTotalMemory(forceFullCollection: true);
    }
}
