using System.Reactive.Linq;

namespace Rx.Uhura.Tests.Chaos;

/// <summary>
/// The promise, under fire: a proxy cuts the link at random every few tens to hundreds of milliseconds while the client
/// sends at least 100,000 numbered events (and keeps sending until the link was cut at least <see cref="MinCuts"/> times,
/// however fast the sends go); the server application receives every number exactly once, in order.
/// </summary>
[Trait("Category", "Chaos")]
public abstract class ChaosTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private const int Count = 100_000;
    private const int InFlight = 2_000;
    private const int MinCuts = 3;
    private const int MaxEvents = 20_000_000;

    protected abstract WireProtocol Protocol { get; }

    [Fact]
    public async Task Every_event_arrives_exactly_once_and_in_order_while_a_proxy_keeps_cutting_the_link()
    {
        await using var server = new UhuraServer();
        var received = new List<int>(Count);
        var duplicatesOrGaps = 0;
        var done = new TaskCompletionSource();
        var target = int.MaxValue; // set once the sender stops
        var connections = 0;
        server.Connections.Subscribe(c =>
        {
            Interlocked.Increment(ref connections);
            c.Event("n").Subscribe(e =>
            {
                var n = e.Arg<int>(0);
                lock (received)
                {
                    if (n != received.Count)
                    {
                        duplicatesOrGaps++;
                    }

                    received.Add(n);
                    if (received.Count == target)
                    {
                        done.TrySetResult();
                    }
                }
            });
        });
        var upstream = await server.ListenAsync("tcp://127.0.0.1:0");
        await using var proxy = ChaosProxy.Start(upstream, new ChaosProxyOptions
        {
            CutIntervalMin = TimeSpan.FromMilliseconds(30),
            CutIntervalMax = TimeSpan.FromMilliseconds(300),
            Seed = 7,
        });

        await using var client = UhuraClient.Connect(proxy.Uri, new UhuraClientOptions
        {
            Protocol = Protocol,
            Reconnect = new ReconnectOptions { FirstDelay = TimeSpan.FromMilliseconds(5), MaxDelay = TimeSpan.FromMilliseconds(50) },
        });

        // Pipelined, with a bounded number of events awaiting their ack.
        using var window = new SemaphoreSlim(InFlight);
        var failures = 0;
        var sends = new List<Task>(Count);
        var sent = 0;
        for (var i = 0; (i < Count || proxy.Cuts < MinCuts) && i < MaxEvents; i++, sent++)
        {
            await window.WaitAsync(TimeSpan.FromSeconds(60));
            sends.Add(client.Send("n", i).ContinueWith(
                t =>
                {
                    if (!t.IsCompletedSuccessfully)
                    {
                        Interlocked.Increment(ref failures);
                    }

                    window.Release();
                },
                TaskScheduler.Default));
        }

        await Task.WhenAll(sends).WaitAsync(TimeSpan.FromSeconds(120));
        lock (received)
        {
            target = sent;
            if (received.Count == target)
            {
                done.TrySetResult();
            }
        }

        await done.Task.WaitAsync(TimeSpan.FromSeconds(30));

        output.WriteLine($"{Protocol}: {sent} events, {proxy.Cuts} cuts, {connections} connections");
        Assert.Equal(0, failures);
        Assert.True(proxy.Cuts >= MinCuts, $"the proxy cut the link only {proxy.Cuts} times in {sent} events");
        lock (received)
        {
            Assert.Equal(0, duplicatesOrGaps);
            Assert.Equal(Enumerable.Range(0, sent), received);
        }

        Assert.True(connections > proxy.Cuts / 2, $"{connections} connections for {proxy.Cuts} cuts");
    }
}

public sealed class ChaosTestsOverTheNativeProtocol(Xunit.Abstractions.ITestOutputHelper output) : ChaosTests(output)
{
    protected override WireProtocol Protocol => WireProtocol.Native;
}

public sealed class ChaosTestsOverTheNodeUhuraWireBetweenDotNetPeers(Xunit.Abstractions.ITestOutputHelper output) : ChaosTests(output)
{
    protected override WireProtocol Protocol => WireProtocol.NodeUhura;
}
