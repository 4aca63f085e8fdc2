using System.Collections.Concurrent;
using Xunit.Abstractions;

namespace Rx.Uhura.Tests.Core;

/// <summary>
/// Link hand-over under forced reconnects (issue #14, item 1): every event exactly once and in order, nothing stuck,
/// the queue bounded, on every wire. Real sockets (TCP on port 0, a temporary Unix socket path).
/// </summary>
public abstract class HandoverTests : IAsyncLifetime
{
    /// <summary>Events posted in the storm test: the size the issue measured (a few seconds per wire here).</summary>
    public const int StormEvents = 200_000;

    /// <summary>
    /// Every this many events the producer also calls <see cref="UhuraClient.Reconnect"/> itself, with the window in
    /// flight, then awaits a <see cref="UhuraClient.Send"/>: each window meets a forced reconnect, and what is in flight
    /// stays under the queue's bound.
    /// </summary>
    private const int Window = 2_000;

    private const int QueueBound = 10_000;

    private static readonly TimeSpan StuckAfter = TimeSpan.FromSeconds(20);

    private readonly UhuraServer _server = new();
    private readonly List<UhuraClient> _clients = [];
    private readonly ITestOutputHelper _output;
    private string? _dir;

    protected HandoverTests(ITestOutputHelper output) => _output = output;

    /// <summary>The wire the clients speak (the server accepts both).</summary>
    protected abstract WireProtocol Protocol { get; }

    /// <summary>Whether the server listens on a Unix socket rather than TCP.</summary>
    protected virtual bool OverUnixSocket => false;

    public async Task InitializeAsync()
    {
        if (OverUnixSocket)
        {
            _dir = Directory.CreateTempSubdirectory("uhura-handover-").FullName;
            await _server.ListenAsync("unix://" + Path.Combine(_dir, "s.sock"));
        }
        else
        {
            await _server.ListenAsync("tcp://127.0.0.1:0");
        }
    }

    public async Task DisposeAsync()
    {
        foreach (var client in _clients)
        {
            client.Dispose();
        }

        await _server.CloseAsync().For();
        if (_dir is not null)
        {
            Directory.Delete(_dir, recursive: true);
        }
    }

    private UhuraClientOptions Options => new()
    {
        Protocol = Protocol,
        Reconnect = ReconnectOptions.Default with { FirstDelay = TimeSpan.FromMilliseconds(5), MaxDelay = TimeSpan.FromMilliseconds(200) },
        Connection = ConnectionOptions.Default with { MaxQueuedMessages = QueueBound },
    };

    [Fact]
    public async Task Every_posted_event_arrives_once_and_in_order_while_Reconnect_is_called_every_20_ms()
    {
        const int count = StormEvents;
        var received = new List<int>(count);
        _server.Connections.Subscribe(c => c.Event("n").Subscribe(e =>
        {
            lock (received)
            {
                received.Add(e.Arg<int>(0));
            }
        }));

        var client = UhuraClient.Connect(_server.Uri!, Options);
        _clients.Add(client);
        await client.WhenConnectedAsync().For();

        using var stop = new CancellationTokenSource();
        var reconnects = 0;
        var storm = Task.Run(async () =>
        {
            // Paces the storm (it waits for nothing): a forced reconnect every 20 ms, as in the issue.
            using var every = new PeriodicTimer(TimeSpan.FromMilliseconds(20));
            while (await every.WaitForNextTickAsync(stop.Token).ConfigureAwait(false))
            {
                client.Reconnect();
                reconnects++;
            }
        });

        var maxQueued = 0;
        var refused = 0;
        var stuckAt = -1;
        try
        {
            for (var i = 0; i < count; i++)
            {
                if ((i + 1) % Window == 0 || i == count - 1)
                {
                    client.Reconnect();
                    if (!await Completes(client.Send("n", i)))
                    {
                        stuckAt = i;
                        break;
                    }
                }
                else if (!client.Post("n", i))
                {
                    refused++;
                }

                maxQueued = Math.Max(maxQueued, client.QueuedCount);
            }
        }
        finally
        {
            await stop.CancelAsync();
            await storm.ContinueWith(_ => { }, TaskScheduler.Default);
        }

        int[] got;
        lock (received)
        {
            got = [.. received];
        }

        var summary = $"{got.Length} delivered of {count}, {got.Distinct().Count()} distinct, first out of order at {FirstOutOfOrder(got)}, stuck at {stuckAt}, {refused} posts refused, queue max {maxQueued}, {reconnects} reconnects, state {client.CurrentState.Status}";
        Assert.True(stuckAt < 0 && refused == 0 && got.Length == count && FirstOutOfOrder(got) < 0, summary);
        Assert.True(maxQueued <= QueueBound, summary);
        _output.WriteLine(summary);
    }

    [Fact]
    public async Task A_Reconnect_right_after_the_handshake_with_200_posts_in_flight_never_leaves_a_client_stuck()
    {
        const int Trials = 300;
        const int Posts = 200;
        var received = new ConcurrentDictionary<int, List<int>>();
        _server.Connections.Subscribe(c => c.Event("t").Subscribe(e =>
        {
            var list = received.GetOrAdd(e.Arg<int>(0), _ => []);
            lock (list)
            {
                list.Add(e.Arg<int>(1));
            }
        }));

        var stuck = 0;
        var wrong = new List<string>();
        for (var trial = 0; trial < Trials; trial++)
        {
            var client = await UhuraClient.ConnectAsync(_server.Uri!, Options).For();
            _clients.Add(client);
            for (var i = 0; i < Posts; i++)
            {
                Assert.True(client.Post("t", trial, i));
            }

            client.Reconnect();
            if (!await Completes(client.Send("t", trial, Posts), TimeSpan.FromSeconds(10)))
            {
                stuck++;
            }
            else
            {
                var list = received.GetOrAdd(trial, _ => []);
                lock (list)
                {
                    if (!list.SequenceEqual(Enumerable.Range(0, Posts + 1)))
                    {
                        wrong.Add($"trial {trial}: {list.Count} delivered, first out of order at {FirstOutOfOrder([.. list])}");
                    }
                }
            }

            client.Dispose();
        }

        Assert.True(stuck == 0 && wrong.Count == 0, $"{stuck} of {Trials} stuck; {wrong.Count} wrong: {string.Join("; ", wrong.Take(5))}");
    }

    [Fact]
    public async Task Four_threads_posting_at_once_while_a_fifth_forces_reconnects_each_see_their_events_arrive_once_and_in_order()
    {
        const int Senders = 4;
        const int PerSender = 20_000;
        var received = new List<int>[Senders];
        for (var t = 0; t < Senders; t++)
        {
            received[t] = new List<int>(PerSender);
        }

        _server.Connections.Subscribe(c => c.Event("p").Subscribe(e =>
        {
            var list = received[e.Arg<int>(0)];
            lock (list)
            {
                list.Add(e.Arg<int>(1));
            }
        }));

        var client = UhuraClient.Connect(_server.Uri!, Options);
        _clients.Add(client);
        await client.WhenConnectedAsync().For();

        // Each sender posts in windows it then awaits (so the queue stays under its bound), and forces a reconnect at
        // every window of its own as well, so the reconnects land at different points of the four streams.
        var start = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var senders = Enumerable.Range(0, Senders).Select(t => Task.Run(async () =>
        {
            await start.Task;
            for (var i = 0; i < PerSender; i++)
            {
                if ((i + 1) % (Window / Senders) == 0 || i == PerSender - 1)
                {
                    if ((i / (Window / Senders)) % Senders == t)
                    {
                        client.Reconnect();
                    }

                    if (!await Completes(client.Send("p", t, i)))
                    {
                        return $"sender {t} stuck at {i}";
                    }
                }
                else if (!client.Post("p", t, i))
                {
                    return $"sender {t}: Post({i}) refused";
                }
            }

            return null;
        })).ToArray();
        start.SetResult();
        var outcomes = await Task.WhenAll(senders).WaitAsync(TimeSpan.FromMinutes(2));

        var wrong = outcomes.Where(o => o is not null).ToList();
        for (var t = 0; t < Senders; t++)
        {
            lock (received[t])
            {
                if (FirstOutOfOrder([.. received[t]]) is var at and >= 0 || received[t].Count != PerSender)
                {
                    wrong.Add($"sender {t}: {received[t].Count} delivered, {received[t].Distinct().Count()} distinct, first out of order at {FirstOutOfOrder([.. received[t]])}");
                }
            }
        }

        Assert.True(wrong.Count == 0, string.Join("; ", wrong));
    }

    /// <summary>The index of the first element that is not its own index (a loss, a duplicate or a reordering); -1 when none.</summary>
    private static int FirstOutOfOrder(int[] values)
    {
        for (var i = 0; i < values.Length; i++)
        {
            if (values[i] != i)
            {
                return i;
            }
        }

        return -1;
    }

    private static Task<bool> Completes(Task task) => Completes(task, StuckAfter);

    private static async Task<bool> Completes(Task task, TimeSpan within)
    {
        try
        {
            await task.WaitAsync(within);
            return true;
        }
        catch (TimeoutException)
        {
            return false;
        }
    }
}

public sealed class HandoverTestsOverNativeTcp(ITestOutputHelper output) : HandoverTests(output)
{
    protected override WireProtocol Protocol => WireProtocol.Native;
}

[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class HandoverTestsOverANativeUnixSocket(ITestOutputHelper output) : HandoverTests(output)
{
    protected override WireProtocol Protocol => WireProtocol.Native;

    protected override bool OverUnixSocket => true;
}

public sealed class HandoverTestsOverTheNodeUhuraWire(ITestOutputHelper output) : HandoverTests(output)
{
    protected override WireProtocol Protocol => WireProtocol.NodeUhura;
}
