using System.Collections.Concurrent;
using System.Diagnostics;

namespace Rx.Uhura.Benchmarks.Compare;

/// <summary>
/// Rx.Uhura itself: an <see cref="UhuraServer"/> and <see cref="UhuraClient"/>s on loopback TCP speaking one wire
/// protocol, acks on (a send counts once its task completed, i.e. the peer acknowledged it).
/// </summary>
public sealed class UhuraContender(string name, WireProtocol protocol) : IContender
{
    private const int ConnectParallelism = 32;

    public string Name { get; } = name;

    public async Task<ScenarioResult?> RunAsync(Scenario scenario, BenchSettings settings, CancellationToken cancellationToken) => scenario switch
    {
        Scenario.Throughput => await ThroughputAsync(settings.ThroughputEvents, measureAllocations: false, cancellationToken),
        Scenario.Allocations => await ThroughputAsync(settings.AllocationEvents, measureAllocations: true, cancellationToken),
        Scenario.Rtt => await RttAsync(settings.RoundTrips, cancellationToken),
        Scenario.Fanout => await FanoutAsync(settings.FanoutClients, settings.FanoutEvents, cancellationToken),
        Scenario.IdleMemory => await IdleAsync(settings.IdleConnections, cancellationToken),
        _ => null,
    };

    private UhuraClientOptions ClientOptions => new() { Protocol = protocol };

    private static async Task<UhuraServer> StartServerAsync(Action<Connection> onConnection, CancellationToken cancellationToken)
    {
        var server = new UhuraServer();
        server.Connections.Subscribe(onConnection);
        await server.ListenAsync("tcp://127.0.0.1:0", cancellationToken);
        return server;
    }

    private async Task<ScenarioResult> ThroughputAsync(int events, bool measureAllocations, CancellationToken cancellationToken)
    {
        long seen = 0;
        var all = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = await StartServerAsync(
            connection => connection.Event("ping").Subscribe(_ =>
            {
                if (Interlocked.Increment(ref seen) == events)
                {
                    all.TrySetResult();
                }
            }),
            cancellationToken);
        await using var client = await UhuraClient.ConnectAsync(server.Uri!, ClientOptions, cancellationToken);

        // Post (no task per event) for all but the last; the last is a Send, whose completion means the server
        // acknowledged it and, events being acknowledged in order, every event before it.
        var allocatedBefore = Measure.AllocatedBytes();
        var stopwatch = Stopwatch.StartNew();
        for (var i = 0; i < events - 1; i++)
        {
            if (!client.Post("ping", i))
            {
                throw new InvalidOperationException($"event {i} was not accepted");
            }
        }

        var last = client.Send("ping", events - 1);
        await all.Task.WaitAsync(cancellationToken);
        await last.WaitAsync(cancellationToken);
        stopwatch.Stop();
        var allocated = Measure.AllocatedBytes() - allocatedBefore;
        return measureAllocations ? Measure.Allocations(allocated, events) : Measure.Throughput(events, stopwatch.Elapsed);
    }

    private async Task<ScenarioResult> RttAsync(int roundTrips, CancellationToken cancellationToken)
    {
        await using var server = await StartServerAsync(
            connection => connection.Event("ping").Subscribe(e => connection.Post("pong", e.Args[0])),
            cancellationToken);
        await using var client = await UhuraClient.ConnectAsync(server.Uri!, ClientOptions, cancellationToken);

        // Ping-pong as an Rx user writes it: the pong's subscriber takes the sample and sends the next ping, so no
        // thread hop is added on top of the library's own (there is none: events are delivered on the read loop).
        var samples = new List<double>(roundTrips);
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        long start = 0;
        using var subscription = client.Event("pong").Subscribe(_ =>
        {
            samples.Add(Measure.Microseconds(Stopwatch.GetTimestamp() - start));
            if (samples.Count == roundTrips)
            {
                done.TrySetResult();
                return;
            }

            start = Stopwatch.GetTimestamp();
            client.Post("ping", samples.Count);
        });
        start = Stopwatch.GetTimestamp();
        client.Post("ping", 0);
        await done.Task.WaitAsync(cancellationToken);
        await client.Send("end").WaitAsync(cancellationToken); // every ping acknowledged
        return Measure.Rtt(samples);
    }

    private async Task<List<UhuraClient>> ConnectManyAsync(string uri, int count, Action<UhuraClient>? setup, CancellationToken cancellationToken)
    {
        var clients = new ConcurrentBag<UhuraClient>();
        await Parallel.ForEachAsync(Enumerable.Range(0, count), new ParallelOptions { MaxDegreeOfParallelism = ConnectParallelism, CancellationToken = cancellationToken }, async (_, ct) =>
        {
            var client = UhuraClient.Connect(uri, ClientOptions);
            clients.Add(client);
            setup?.Invoke(client);
            await client.WhenConnectedAsync(ct);
        });
        return [.. clients];
    }

    private static async Task DisposeAllAsync(IEnumerable<UhuraClient> clients)
    {
        await Parallel.ForEachAsync(clients, new ParallelOptions { MaxDegreeOfParallelism = ConnectParallelism }, async (client, _) => await client.DisposeAsync());
    }

    private static async Task WaitForConnectionsAsync(ConcurrentQueue<Connection> connections, int count, CancellationToken cancellationToken)
    {
        while (connections.Count < count)
        {
            await Task.Delay(5, cancellationToken);
        }
    }

    private async Task<ScenarioResult> FanoutAsync(int clientCount, int events, CancellationToken cancellationToken)
    {
        var connections = new ConcurrentQueue<Connection>();
        await using var server = await StartServerAsync(connections.Enqueue, cancellationToken);
        long delivered = 0;
        long target = (long)clientCount * Measure.FanoutWarmup;
        var phase = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var clients = await ConnectManyAsync(
            server.Uri!,
            clientCount,
            client => client.Event("ping").Subscribe(_ =>
            {
                if (Interlocked.Increment(ref delivered) == Volatile.Read(ref target))
                {
                    Volatile.Read(ref phase).TrySetResult();
                }
            }),
            cancellationToken);
        try
        {
            await WaitForConnectionsAsync(connections, clientCount, cancellationToken);

            // Warm-up, as the Socket.IO contender does: a few broadcasts every client receives and acknowledges before the
            // clock starts, so that what connecting left behind (handshake work, first buffers) is not measured.
            for (var m = 0; m < Measure.FanoutWarmup; m++)
            {
                server.Broadcast("ping", m);
            }

            await phase.Task.WaitAsync(cancellationToken);
            await Task.WhenAll(connections.Select(c => c.WhenAcknowledgedAsync())).WaitAsync(cancellationToken);
            long expected = (long)clientCount * events;
            Volatile.Write(ref phase, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
            Interlocked.Exchange(ref delivered, 0);
            Volatile.Write(ref target, expected);

            // Broadcast encodes each event once and writes it to every connection; the clock stops when every client
            // has every event and the server has every acknowledgement (each connection closes only once idle).
            var stopwatch = Stopwatch.StartNew();
            for (var m = 0; m < events; m++)
            {
                server.Broadcast("ping", m);
            }

            await phase.Task.WaitAsync(cancellationToken);
            await Task.WhenAll(connections.Select(c => c.WhenAcknowledgedAsync())).WaitAsync(cancellationToken);
            stopwatch.Stop();
            return Measure.Fanout(expected, stopwatch.Elapsed, clientCount);
        }
        finally
        {
            await DisposeAllAsync(clients);
        }
    }

    private async Task<ScenarioResult> IdleAsync(int count, CancellationToken cancellationToken)
    {
        var connections = new ConcurrentQueue<Connection>();
        await using var server = await StartServerAsync(connections.Enqueue, cancellationToken);
        var before = Measure.Memory();
        var clients = await ConnectManyAsync(server.Uri!, count, null, cancellationToken);
        try
        {
            await WaitForConnectionsAsync(connections, count, cancellationToken);
            var after = Measure.Memory();
            return Measure.Idle(before, after, count);
        }
        finally
        {
            await DisposeAllAsync(clients);
        }
    }
}
