using System.Reactive.Linq;
using Rx.Uhura.Transport;

namespace Rx.Uhura.Tests.Faults;

/// <summary>
/// The promise as a property, over many seeds: whatever a seed does to the links (reads and writes split at random
/// points, links cut after a random number of bytes, <see cref="UhuraClient.Reconnect"/> called at random steps, from
/// the sending thread and from another, subscribers that throw), every event of each direction reaches the other
/// application exactly once and in order, the client's last <see cref="UhuraClient.Send"/> completes, and every stream
/// completes when the client is disposed. A failing case names its seed; <c>UHURA_FAULT_SEEDS=N</c> runs N seeds per
/// wire instead of the default.
/// </summary>
[Trait("Category", "Chaos")]
public abstract class SeededFaultTests(Xunit.Abstractions.ITestOutputHelper output) : IDisposable
{
    private static readonly TimeSpan RunTimeout = TimeSpan.FromSeconds(45);

    private readonly string _socketPath = Path.Combine(Path.GetTempPath(), $"uhura-fault-{Guid.NewGuid():N}.sock");

    protected abstract WireProtocol Protocol { get; }

    /// <summary>Whether the server's sends follow the session across links (the native protocol's resume).</summary>
    protected abstract bool ServerSendsResume { get; }

    public static TheoryData<int> Seeds()
    {
        var count = int.TryParse(Environment.GetEnvironmentVariable("UHURA_FAULT_SEEDS"), out var n) && n > 0 ? n : 24;
        var seeds = new TheoryData<int>();
        for (var seed = 1; seed <= count; seed++)
        {
            seeds.Add(seed);
        }

        return seeds;
    }

    public void Dispose()
    {
        File.Delete(_socketPath);
        GC.SuppressFinalize(this);
    }

    [Theory]
    [MemberData(nameof(Seeds))]
    public async Task Every_event_arrives_once_and_in_order_whatever_the_seed_does_to_the_links(int seed)
    {
        var random = new Random(seed);
        var clientEvents = random.Next(200, 3_000);
        var serverEvents = ServerSendsResume ? random.Next(100, 1_500) : 0;
        var reconnectAt = Enumerable.Range(0, random.Next(0, 4)).Select(_ => random.Next(clientEvents)).ToHashSet();
        var reconnectFromElsewhereAt = Enumerable.Range(0, random.Next(0, 3)).Select(_ => random.Next(clientEvents)).ToHashSet();
        var clientThrowsAt = random.Next(-1, Math.Max(serverEvents, 1));
        var serverThrowsAt = random.Next(-1, clientEvents);
        var plan = new FaultPlan(seed) { MaxCuts = random.Next(0, 8) };
        var transport = new FaultInjectingTransport(SocketTransport.Instance, plan);
        var story = $"seed {seed}: {clientEvents} client events, {serverEvents} server events, reconnect at [{string.Join(",", reconnectAt)}] and from another thread at [{string.Join(",", reconnectFromElsewhereAt)}], client subscriber throws at {clientThrowsAt}, server subscriber throws at {serverThrowsAt}, up to {plan.MaxCuts} cuts";

        await using var server = new UhuraServer();
        var atServer = new List<int>(clientEvents);
        var endReceived = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var serverSends = new List<Task>();
        var first = 0;
        var serverThrew = 0;
        server.Connections.Subscribe(connection =>
        {
            connection.Event("n").Subscribe(e =>
            {
                lock (atServer)
                {
                    atServer.Add(e.Arg<int>(0));
                }
            });
            connection.Event("n").Subscribe(e =>
            {
                if (e.Arg<int>(0) == serverThrowsAt && Interlocked.Exchange(ref serverThrew, 1) == 0)
                {
                    throw new InvalidOperationException($"a server subscriber throws at {serverThrowsAt}");
                }
            });
            connection.Event("end").Subscribe(_ => endReceived.TrySetResult());
            if (Interlocked.Exchange(ref first, 1) == 0)
            {
                // The server's events follow the session: sent on the first link, they reach the client across every later one.
                lock (serverSends)
                {
                    for (var i = 0; i < serverEvents; i++)
                    {
                        serverSends.Add(connection.Send("s", i));
                    }
                }
            }
        });
        await server.ListenAsync("unix://" + _socketPath);

        await using var client = UhuraClient.Create("unix://" + _socketPath, new UhuraClientOptions
        {
            Protocol = Protocol,
            Transport = transport,
            Reconnect = new ReconnectOptions { FirstDelay = TimeSpan.FromMilliseconds(1), MaxDelay = TimeSpan.FromMilliseconds(20) },
        });
        var atClient = new List<int>(serverEvents);
        var clientThrew = 0;
        var eventsCompleted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        client.Events.Subscribe(_ => { }, _ => eventsCompleted.TrySetResult(), eventsCompleted.SetResult);
        client.Event("s").Subscribe(e =>
        {
            if (e.Arg<int>(0) == clientThrowsAt && Interlocked.Exchange(ref clientThrew, 1) == 0)
            {
                throw new InvalidOperationException($"a client subscriber throws at {clientThrowsAt}");
            }
        });
        client.Event("s").Subscribe(e =>
        {
            lock (atClient)
            {
                atClient.Add(e.Arg<int>(0));
            }
        });

        var errors = new System.Collections.Concurrent.ConcurrentQueue<string>();
        client.Errors.Subscribe(e => errors.Enqueue("client: " + e.Message));
        server.Errors.Subscribe(e => errors.Enqueue("server: " + e.Message));
        var started = client.StartAsync(); // after subscribing: the server sends as soon as the client connects
        var reconnects = new List<Task>();
        for (var i = 0; i < clientEvents; i++)
        {
            if (reconnectAt.Contains(i))
            {
                client.Reconnect();
            }

            if (reconnectFromElsewhereAt.Contains(i))
            {
                reconnects.Add(Task.Run(client.Reconnect));
            }

            Assert.True(client.Post("n", i), $"{story}: Post({i}) was refused");
        }

        var stage = "the client's start";
        Task[] pending = [];
        try
        {
            await started.WaitAsync(RunTimeout);
            stage = "the acknowledgement of the client's last Send";
            await client.Send("end").WaitAsync(RunTimeout);
            stage = "the server's delivery of the last event";
            await endReceived.Task.WaitAsync(RunTimeout);
            lock (serverSends)
            {
                pending = [.. serverSends];
            }

            stage = "the acknowledgements of the server's sends";
            await Task.WhenAll(pending).WaitAsync(RunTimeout);
            stage = "the Reconnect calls from another thread";
            await Task.WhenAll(reconnects).WaitAsync(RunTimeout);
        }
        catch (TimeoutException)
        {
            int s, c;
            lock (atServer)
            {
                s = atServer.Count;
            }

            lock (atClient)
            {
                c = atClient.Count;
            }

            int unacknowledged;
            lock (serverSends)
            {
                unacknowledged = serverSends.Count(t => !t.IsCompleted);
            }

            Assert.Fail($"{story}: stuck after {RunTimeout.TotalSeconds} s waiting for {stage} ({unacknowledged} server sends unacknowledged) with {s}/{clientEvents} at the server, {c}/{serverEvents} at the client, {transport.Cuts} cuts, {transport.Connections} connections, client {client.CurrentState}; errors: {string.Join(" | ", errors.Take(6))}");
        }

        output.WriteLine($"{story}: {transport.Connections} connections, {transport.Cuts} cuts");
        lock (atServer)
        {
            AssertSequence(story, "at the server", clientEvents, atServer);
        }

        lock (atClient)
        {
            AssertSequence(story, "at the client", serverEvents, atClient);
        }

        await client.DisposeAsync().AsTask().WaitAsync(RunTimeout);
        await eventsCompleted.Task.WaitAsync(RunTimeout);
    }

    private static void AssertSequence(string story, string where, int count, List<int> received)
    {
        if (received.Count == count && received.Select((n, i) => n == i).All(x => x))
        {
            return;
        }

        var duplicates = received.Count - received.Distinct().Count();
        var missing = Enumerable.Range(0, count).Except(received).Take(10).ToList();
        var firstOutOfOrder = received.Select((n, i) => (n, i)).FirstOrDefault(p => p.n != p.i);
        Assert.Fail($"{story}: {where} {received.Count}/{count} received, {duplicates} duplicates, first missing [{string.Join(",", missing)}], first out of place {firstOutOfOrder.n} at {firstOutOfOrder.i}");
    }
}

public sealed class SeededFaultTestsOverTheNativeProtocol(Xunit.Abstractions.ITestOutputHelper output) : SeededFaultTests(output)
{
    protected override WireProtocol Protocol => WireProtocol.Native;

    protected override bool ServerSendsResume => true;
}

public sealed class SeededFaultTestsOverTheNodeUhuraWireBetweenDotNetPeers(Xunit.Abstractions.ITestOutputHelper output) : SeededFaultTests(output)
{
    protected override WireProtocol Protocol => WireProtocol.NodeUhura;

    protected override bool ServerSendsResume => false;
}
