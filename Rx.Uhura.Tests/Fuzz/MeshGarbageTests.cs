using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Reactive.Linq;
using System.Text;
using Newtonsoft.Json.Linq;
using Rx.Uhura.Mesh;
using Rx.Uhura.Mesh.Internal;
using Rx.Uhura.Tests.Core;
using Rx.Uhura.Tests.Mesh;
using Rx.Uhura.Transport;
using Xunit.Abstractions;

namespace Rx.Uhura.Tests.Fuzz;

/// <summary>
/// A mesh node under 200 sockets sending seeded garbage before the handshake while a linked peer keeps exchanging
/// packets: each socket ends with a typed error, the peer's link never drops, memory stays bounded.
/// </summary>
public class MeshGarbageTests(ITestOutputHelper output)
{
    private const long MemoryBound = 256L * 1024 * 1024;

    /// <summary>Bytes the native mesh reader refuses: huge, zero or unknown frames, handshakes that are not JSON objects or nest too deep, packets first.</summary>
    private static byte[] Garbage(Random rng)
    {
        var tail = GarbageFlood.NonNul(rng, rng.Next(4, 64)); // never less than a length prefix: a shorter stream only times out
        return rng.Next(6) switch
        {
            0 => [(byte)rng.Next(1, 256), .. tail], // a length prefix of 16 MiB or more
            1 => [0, 0, 0, 0, .. tail],
            2 => [0, 0, 0, (byte)(1 + tail.Length % 8), (byte)rng.Next(13, 256), .. tail.AsSpan(0, tail.Length % 8)],
            3 => NativeMeshCodec.Frame(MeshFrameType.Hello, Encoding.ASCII.GetBytes("hello " + GarbageFlood.Alnum(rng, rng.Next(20)))),
            4 => NativeMeshCodec.Frame(MeshFrameType.Hello, Encoding.ASCII.GetBytes("{\"id\":" + new string('[', 100 + rng.Next(50)) + new string(']', 150) + "}")),
            _ => NativeMeshCodec.Frame(MeshFrameType.Packet, new JObject { ["x"] = rng.Next() }),
        };
    }

    [Fact]
    public async Task A_node_ends_every_garbage_socket_with_a_typed_error_and_keeps_its_peer()
    {
        var clock = Stopwatch.StartNew();
        var errors = new LogMessages();
        var logged = new ConcurrentQueue<Exception>();
        var allLogged = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var errorLog = errors.Errors.Subscribe(ex =>
        {
            logged.Enqueue(ex);
            if (logged.Count >= GarbageFlood.Connections)
            {
                allLogged.TrySetResult();
            }
        });
        await using var kit = new MeshTestKit();
        var node = await kit.StartAsync("node", UhuraNodeOptions.Default with { LoggerFactory = errors });
        var good = await kit.StartAsync("good");
        await good.ConnectAsync(node.Info!).For();
        await node.WhenConnectedAsync("good").For();
        var disconnects = new ConcurrentQueue<NodeEvent>();
        using var disconnectLog = good.NodeEvents.Merge(node.NodeEvents).Where(e => e.Kind is NodeEventKind.Disconnect or NodeEventKind.PeerGone).Subscribe(disconnects.Enqueue);
        var before = GarbageFlood.ManagedMemory();

        using var stop = new CancellationTokenSource();
        var trips = Task.Run(async () =>
        {
            var n = 0;
            while (!stop.IsCancellationRequested || n < 10)
            {
                await MeshSteps.RoundTripAsync(good, node);
                n++;
            }

            return n;
        });

        var stillOpen = await GarbageFlood.RunAsync(UhuraEndpoint.Parse(node.Info!), Garbage);
        stop.Cancel(); // the peer still does its first ten round trips if the flood was quicker
        var roundTrips = await trips.WaitAsync(TimeSpan.FromSeconds(10));

        Assert.True(stillOpen.Length == 0, $"{stillOpen.Length} garbage sockets still open:\n{string.Join('\n', stillOpen.Take(3))}");
        await Task.WhenAny(allLogged.Task, Task.Delay(Wait.Timeout)); // the count is asserted below

        var kinds = string.Join(", ", logged.GroupBy(x => x.GetType().Name).Select(g => $"{g.Count()} {g.Key}"));
        Assert.All(logged, ex => Assert.IsAssignableFrom<UhuraException>(ex));
        Assert.True(logged.Count == GarbageFlood.Connections, $"{logged.Count} errors logged: {kinds}");
        Assert.Empty(disconnects);
        Assert.Equal(["good"], node.Peers);
        await Wait.First(node.OpenLinks, n => n == 1);
        var after = GarbageFlood.ManagedMemory();
        output.WriteLine($"mesh node: {GarbageFlood.Connections} garbage sockets ended ({kinds}); {roundTrips} round trips meanwhile; managed memory {before / 1024} KiB before, {after / 1024} KiB after; {clock.Elapsed.TotalSeconds:F1} s.");
        Assert.True(after - before < MemoryBound, $"managed memory grew by {(after - before) / 1024} KiB");
    }
}
