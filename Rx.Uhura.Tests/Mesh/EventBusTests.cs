using System.Collections.Concurrent;
using Rx.Uhura.Mesh;
using Rx.Uhura.Tests.Chaos;
using Rx.Uhura.Tests.Core;

namespace Rx.Uhura.Tests.Mesh;

public class EventBusTests
{
    public static TheoryData<string, int, (int, int)[]> Topologies => new()
    {
        { "line", 4, [(0, 1), (1, 2), (2, 3)] },
        { "ring", 5, [(0, 1), (1, 2), (2, 3), (3, 4), (4, 0)] },
        { "star", 5, [(1, 0), (2, 0), (3, 0), (4, 0)] },
        { "full mesh", 4, [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)] },
    };

    [Theory]
    [MemberData(nameof(Topologies))]
    public async Task Every_event_reaches_every_other_node_exactly_once(string topology, int n, (int, int)[] edges)
    {
        _ = topology;
        await using var kit = new MeshTestKit();
        var nodes = new UhuraNode[n];
        for (var i = 0; i < n; i++)
        {
            nodes[i] = await kit.StartAsync($"n{i}");
        }

        await ConnectAsync(nodes, edges.Select(e => (nodes[e.Item1], nodes[e.Item2].Info!)).ToArray(), edges.Select(e => (nodes[e.Item1], nodes[e.Item2])).ToArray());
        const int perNode = 20;
        var ledger = new Ledger(nodes, perNode);
        for (var k = 0; k < perNode; k++)
        {
            foreach (var node in nodes)
            {
                node.Emit("tick", node.Id, k);
            }
        }

        await ledger.Complete.For();
        ledger.AssertExactlyOnce();
    }

    [Fact]
    public async Task An_event_carries_its_origin_and_path()
    {
        await using var kit = new MeshTestKit();
        var a = await kit.StartAsync("a");
        var b = await kit.StartAsync("b");
        var c = await kit.StartAsync("c");
        await ConnectAsync([a, b, c], [(b, a.Info!), (c, b.Info!)], [(b, a), (c, b)]);
        var atC = Wait.First(c.Event("hello"));
        a.Emit("hello", new { x = 1 });
        var e = await atC;
        Assert.Equal("a", e.OriginId);
        Assert.Equal(["a", "b"], e.Path);
        Assert.Equal(1, e.Args[0]["x"]!.ToObject<int>());
    }

    [Fact]
    public async Task A_node_on_another_channel_is_refused_with_a_clear_error()
    {
        await using var kit = new MeshTestKit();
        var a = await kit.StartAsync("a", UhuraNodeOptions.Default with { Channel = "blue" });
        var b = await kit.StartAsync("b", UhuraNodeOptions.Default with { Channel = "green" });
        var refusedAtA = Wait.First(a.NodeEvents, e => e.Kind == NodeEventKind.Refused);
        var error = await Assert.ThrowsAsync<PeerRefusedException>(() => b.ConnectAsync(a.Info!).For());
        Assert.Equal(PeerRefusal.ChannelMismatch, error.Reason);
        Assert.Contains("green", error.Message);
        Assert.Contains("blue", error.Message);
        var atA = await refusedAtA;
        Assert.Equal("b", atA.PeerId);
        Assert.Equal(PeerRefusal.ChannelMismatch, ((PeerRefusedException)atA.Error!).Reason);
        Assert.Empty(a.Peers);
        Assert.Empty(b.Peers);
    }

    [Fact]
    public async Task A_ring_with_a_chord_delivers_every_event_exactly_once_while_links_are_cut_at_random()
    {
        const int n = 6;
        const int perNode = 1000;
        var options = UhuraNodeOptions.Default with
        {
            AcknowledgeInterval = TimeSpan.FromMilliseconds(50),
            BufferMax = 20_000,
            Reconnect = ReconnectOptions.Default with { FirstDelay = TimeSpan.FromMilliseconds(10), MaxDelay = TimeSpan.FromMilliseconds(200) },
        };
        var kit = new MeshTestKit();
        var nodes = new UhuraNode[n];
        for (var i = 0; i < n; i++)
        {
            nodes[i] = await kit.StartAsync($"r{i}", options);
        }


        // Ring 0-1-2-3-4-5-0 plus the chord 0-3; every link runs through its own proxy, which cuts it at random.
        (int From, int To)[] edges = [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (5, 0), (0, 3)];
        var proxies = new List<ChaosProxy>();
        try
        {
            var dials = new List<(UhuraNode, string)>();
            for (var e = 0; e < edges.Length; e++)
            {
                var target = Rx.Uhura.Transport.UhuraEndpoint.Parse(nodes[edges[e].To].Info!);
                var proxy = ChaosProxy.Start(target, new ChaosProxyOptions { CutIntervalMin = TimeSpan.FromMilliseconds(50), CutIntervalMax = TimeSpan.FromMilliseconds(400), Seed = 1000 + e });
                proxy.PauseChaos();
                proxies.Add(proxy);
                dials.Add((nodes[edges[e].From], proxy.Uri));
            }

            await ConnectAsync(nodes, [.. dials], edges.Select(e => (nodes[e.From], nodes[e.To])).ToArray());
            var ledger = new Ledger(nodes, perNode);
            proxies.ForEach(p => p.ResumeChaos());
            var emitters = nodes.Select(node => Task.Run(async () =>
            {
                // Paced over about two seconds, so the cuts (every 50..400 ms per link) fall in the middle of it.
                for (var k = 0; k < perNode; k++)
                {
                    node.Emit("tick", node.Id, k);
                    if (k % 5 == 4)
                    {
                        await Task.Delay(10);
                    }
                }
            })).ToArray();
            await Task.WhenAll(emitters).WaitAsync(TimeSpan.FromSeconds(60));
            proxies.ForEach(p => p.PauseChaos());
            var signals = new ConcurrentQueue<string>();
            using var watch = System.Reactive.Linq.Observable.Merge(nodes.Select(node => System.Reactive.Linq.Observable.Select(node.NodeEvents, e => $"{node.Id} {e.Kind} {e.PeerId} {e.Error?.Message}")))
                .Subscribe(signals.Enqueue);
            try
            {
                await ledger.Complete.WaitAsync(TimeSpan.FromSeconds(30));
            }
            catch (TimeoutException)
            {
                Assert.Fail(ledger.Missing() + "\n" + string.Join("\n", signals.TakeLast(40)) + "\npeers: " + string.Join("; ", nodes.Select(x => x.Id + ":" + string.Join(",", x.Peers))));
            }

            ledger.AssertExactlyOnce();
            Assert.All(proxies, p => Assert.True(p.Cuts >= 1));
        }
        finally
        {
            foreach (var proxy in proxies)
            {
                await proxy.DisposeAsync();
            }

            await kit.DisposeAsync();
        }
    }

    /// <summary>Dials every edge and waits until both ends of each are connected and synchronized.</summary>
    internal static async Task ConnectAsync(UhuraNode[] nodes, (UhuraNode From, string Uri)[] dials, (UhuraNode From, UhuraNode To)[] pairs)
    {
        _ = nodes;
        await Task.WhenAll(dials.Select(d => d.From.ConnectAsync(d.Uri))).WaitAsync(Wait.Timeout);
        foreach (var (from, to) in pairs)
        {
            await from.WhenConnectedAsync(to.Id).For();
            await to.WhenConnectedAsync(from.Id).For();
        }
    }

    /// <summary>Counts, per receiving node, every (origin, k) it received.</summary>
    private sealed class Ledger
    {
        private readonly ConcurrentDictionary<(string At, string Origin, int K), int> _counts = new();
        private readonly int _expected;
        private int _received;
        private readonly TaskCompletionSource _complete = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly UhuraNode[] _nodes;
        private readonly int _perNode;

        public Ledger(UhuraNode[] nodes, int perNode)
        {
            _nodes = nodes;
            _perNode = perNode;
            _expected = nodes.Length * (nodes.Length - 1) * perNode;
            foreach (var node in nodes)
            {
                node.Event("tick").Subscribe(e =>
                {
                    var origin = e.Arg<string>(0)!;
                    Assert.Equal(origin, e.OriginId);
                    var first = _counts.AddOrUpdate((node.Id, origin, e.Arg<int>(1)), 1, (_, c) => c + 1) == 1;
                    if (first && Interlocked.Increment(ref _received) == _expected)
                    {
                        _complete.TrySetResult();
                    }
                });
            }
        }

        public Task Complete => _complete.Task;

        public string Missing()
        {
            var missing = new List<string>();
            foreach (var at in _nodes)
            {
                foreach (var origin in _nodes.Where(o => o != at))
                {
                    var count = _counts.Keys.Count(key => key.At == at.Id && key.Origin == origin.Id);
                    if (count != _perNode)
                    {
                        var first = Enumerable.Range(0, _perNode).First(k => !_counts.ContainsKey((at.Id, origin.Id, k)));
                        missing.Add($"{at.Id} has {count} from {origin.Id} (first missing {first})");
                    }
                }
            }

            return string.Join("\n", missing);
        }

        public void AssertExactlyOnce()
        {
            Assert.Equal(_expected, _counts.Count);
            var duplicates = _counts.Where(c => c.Value != 1).Select(c => $"{c.Key}×{c.Value}").Take(10).ToList();
            Assert.True(duplicates.Count == 0, "Delivered more than once: " + string.Join(", ", duplicates));
            foreach (var at in _nodes)
            {
                Assert.DoesNotContain(_counts.Keys, key => key.At == at.Id && key.Origin == at.Id);
                Assert.Equal((_nodes.Length - 1) * _perNode, _counts.Keys.Count(key => key.At == at.Id));
            }
        }
    }
}
