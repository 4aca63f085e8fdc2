using System.Security.Cryptography;
using System.Text;
using Microsoft.Reactive.Testing;
using Rx.Uhura.Mesh;
using Rx.Uhura.Tests.Faults;
using Rx.Uhura.Transport;

namespace Rx.Uhura.Tests.Simulation;

/// <summary>
/// One seeded run of a mesh of three to five nodes (native protocol, event bus) over the in-memory transport, on the
/// simulation's one thread and virtual clock. The seed chooses the graph (a line, a star, a ring or a full mesh; every
/// link kept, so cut links are redialled), how many events each node emits, and the faults of the dialling side's
/// links: split reads and writes, cuts after a random number of bytes, stalls. Checked: every node receives every other
/// node's events exactly once (and, on a graph with one path between two nodes, in the order emitted), nothing is stuck
/// within the virtual deadline, and every node closes.
/// </summary>
internal static class MeshSimulator
{
    private static readonly TimeSpan VirtualDeadline = TimeSpan.FromMinutes(10);
    private static readonly long Ms = TimeSpan.TicksPerMillisecond;

    public static async Task<SimulationOutcome> RunAsync(int seed)
    {
        var random = new Random(seed);
        var count = random.Next(3, 6);
        var shape = (Shape)random.Next(4);
        var emits = Enumerable.Range(0, count).Select(_ => random.Next(0, 300)).ToArray();
        var scheduler = new TestScheduler();
        var time = new SchedulerTimeProvider(scheduler);
        var plan = FaultPlan.Draw(seed, random, time, maxCuts: 6, maxBytesBeforeCut: 30_000);
        var story = $"{count} nodes in a {shape} emitting [{string.Join(",", emits)}], {plan.Story}";
        var memory = new MemoryTransport();
        var faults = new FaultInjectingTransport(memory, plan);
        var trace = new StringBuilder();
        var options = UhuraNodeOptions.Default with
        {
            Transport = faults,
            TimeProvider = time,
            Reconnect = new ReconnectOptions { FirstDelay = TimeSpan.FromMilliseconds(1), MaxDelay = TimeSpan.FromMilliseconds(50), Randomizer = random.NextDouble },
        };

        var nodes = new UhuraNode[count];
        var received = new List<int>[count, count]; // [at, from]
        for (var n = 0; n < count; n++)
        {
            var at = n;
            nodes[n] = new UhuraNode(options with { NodeId = $"n{n}" });
            for (var from = 0; from < count; from++)
            {
                received[at, from] = [];
            }

            nodes[n].Event("e").Subscribe(e =>
            {
                var (from, i) = (e.Arg<int>(0), e.Arg<int>(1));
                received[at, from].Add(i);
                trace.Append($"{at}<{from}.{i}:{scheduler.Clock / Ms} ");
            });
            await nodes[n].ListenAsync($"memory://mesh-{seed}-{n}");
        }

        // A first dial whose link is cut before the handshake ends fails, as documented: the driver dials again, as an
        // application would.
        foreach (var (from, to) in Edges(shape, count))
        {
            for (var attempt = 1; ; attempt++)
            {
                var dial = nodes[from].ConnectAsync(nodes[to].Info!);
                var dialStuck = await Simulator.RunUntilAsync(scheduler, () => dial.IsCompleted, VirtualDeadline);
                if (dialStuck is not null)
                {
                    return Outcome($"dialling n{to} from n{from} stuck {dialStuck}");
                }

                if (dial.IsCompletedSuccessfully)
                {
                    break;
                }

                if (attempt == 20 || dial.Exception!.GetBaseException() is not (PeerLostException or IOException))
                {
                    return Outcome($"dialling n{to} from n{from} failed: {dial.Exception!.GetBaseException()}");
                }
            }
        }

        var next = new int[count];
        for (var step = 0; step < emits.Sum(); step++)
        {
            var n = random.Next(count);
            while (next[n] == emits[n])
            {
                n = (n + 1) % count;
            }

            nodes[n].Emit("e", n, next[n]++);
            if (random.Next(10) == 0)
            {
                await SingleThread.QuiesceAsync();
            }

            if (random.Next(50) == 0)
            {
                scheduler.AdvanceBy(random.Next(1, 20) * Ms);
            }
        }

        var stuck = await Simulator.RunUntilAsync(scheduler, () => Complete(), VirtualDeadline);
        if (stuck is not null)
        {
            return Outcome($"stuck {stuck}: {Summary()}, {faults.Connections} connections, {faults.Cuts} cuts");
        }

        for (var at = 0; at < count; at++)
        {
            for (var from = 0; from < count; from++)
            {
                var got = received[at, from];
                var expected = at == from ? 0 : emits[from];
                var inOrder = shape is Shape.Line or Shape.Star;
                if (got.Count != expected || got.Distinct().Count() != expected || (inOrder && !got.Select((v, i) => v == i).All(x => x)))
                {
                    return Outcome($"node {at} has {got.Count}/{expected} of node {from}'s events ({got.Count - got.Distinct().Count()} duplicates{(inOrder ? ", order checked" : "")})");
                }
            }
        }

        var closed = Task.WhenAll(nodes.Select(node => node.CloseAsync()));
        stuck = await Simulator.RunUntilAsync(scheduler, () => closed.IsCompleted, VirtualDeadline);
        if (stuck is not null)
        {
            return Outcome($"closing stuck {stuck}");
        }

        trace.Append($"\nend at {scheduler.Clock / Ms} after {faults.Connections} connections and {faults.Cuts} cuts");
        return Outcome(null);

        bool Complete()
        {
            for (var at = 0; at < count; at++)
            {
                for (var from = 0; from < count; from++)
                {
                    if (at != from && received[at, from].Count < emits[from])
                    {
                        return false;
                    }
                }
            }

            return true;
        }

        string Summary() => string.Join(" ", Enumerable.Range(0, count).Select(at => $"n{at}:[{string.Join(",", Enumerable.Range(0, count).Select(from => received[at, from].Count))}]"));

        SimulationOutcome Outcome(string? failure) =>
            new(seed, "mesh", failure, Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(trace.ToString())))[..16], $"{story}; {faults.Connections} connections, {faults.Cuts} cuts, virtual {scheduler.Clock / Ms} ms");
    }

    private enum Shape
    {
        Line,
        Star,
        Ring,
        Full,
    }

    private static IEnumerable<(int From, int To)> Edges(Shape shape, int count) => shape switch
    {
        Shape.Line => Enumerable.Range(1, count - 1).Select(n => (n, n - 1)),
        Shape.Star => Enumerable.Range(1, count - 1).Select(n => (n, 0)),
        Shape.Ring => Enumerable.Range(0, count).Select(n => (n, (n + 1) % count)),
        _ => from a in Enumerable.Range(0, count) from b in Enumerable.Range(0, count) where a > b select (a, b),
    };
}
