using System.Security.Cryptography;
using System.Text;
using System.Reactive.Linq;
using Microsoft.Reactive.Testing;
using Newtonsoft.Json.Linq;
using Rx.Uhura.Session;
using Rx.Uhura.Tests.Faults;
using Rx.Uhura.Transport;

namespace Rx.Uhura.Tests.Simulation;

/// <summary>What one seed did: whether the promise held, and a digest of everything observable (to prove a replay).</summary>
internal sealed record SimulationOutcome(int Seed, string Wire, string? Failure, string Digest, string Story)
{
    public override string ToString() =>
        Failure is null ? $"seed={Seed} wire={Wire} ok digest={Digest} {Story}" : $"seed={Seed} wire={Wire} FAIL {Failure} | {Story}";
}

/// <summary>
/// One seeded run of a client and a server over the in-memory transport, on one thread and one virtual clock
/// (<see cref="SingleThread"/>). The seed chooses the workload and the faults: how many events each side sends; reads
/// and writes split at random points and links cut after a random number of bytes (<see cref="FaultInjectingTransport"/>);
/// <see cref="UhuraClient.Reconnect"/> called at random steps, inline and as queued work; subscribers that throw, and that
/// block (the clock moves on inside their call, so every timer due meanwhile fires there); how
/// far the library runs between two of the driver's steps and how far the clock moves. The promise is then checked:
/// every event of each direction reached the other application exactly once and in order, the client's last
/// <see cref="UhuraClient.Send"/> and every server send completed, nothing stayed stuck (the run ends within a virtual
/// deadline), and every stream completed when the client and server were disposed.
/// </summary>
internal static class Simulator
{
    private static readonly TimeSpan VirtualDeadline = TimeSpan.FromMinutes(5);
    private static readonly long Ms = TimeSpan.TicksPerMillisecond;

    public static async Task<SimulationOutcome> RunAsync(int seed, WireProtocol protocol)
    {
        var random = new Random(seed);
        var clients = random.Next(1, 4);
        var clientEvents = Enumerable.Range(0, clients).Select(_ => random.Next(50, 1_500)).ToArray();
        var serverEvents = Enumerable.Range(0, clients).Select(_ => protocol == WireProtocol.Native ? random.Next(0, 800) : 0).ToArray();
        var steps = clientEvents.Sum();
        var reconnectAt = Draw(random, random.Next(0, 3 + clients), steps);
        var queuedReconnectAt = Draw(random, random.Next(0, 3), steps);
        var clientThrowsAt = random.Next(-1, Math.Max(serverEvents[0], 1));
        var serverThrowsAt = random.Next(-1, clientEvents[0]);
        var awaitedOneIn = random.Next(2, 30);     // one client event in this many is a Send whose completion is checked
        var setOneIn = random.Next(5, 200);        // one step (client) or delivered event (server) in this many sets a session key
        var closeAt = Draw(random, random.Next(0, 3), clientEvents[0]);  // client 0's events on which a server subscriber closes its link
        var abortAt = Draw(random, random.Next(0, 3), clientEvents[0]);  // ... or aborts it (Dispose)
        var sharedKeys = protocol == WireProtocol.Native; // crossing changes of one key converge on the native wire only (as documented)
        var runBetweenSteps = random.Next(1, 20); // the driver lets the library run to rest about once every this many steps
        var tickEvery = random.Next(5, 200);      // and moves the clock by a millisecond or two about once every this many
        var quitter = clients > 1 && random.Next(3) == 0 ? random.Next(1, clients) : -1; // a client disposed in the middle of its work
        var quitAt = random.Next(steps);
        // A subscriber that blocks: the one thread is held while the clock moves on, so every timer due meanwhile fires
        // inside the subscriber's call (heartbeats, timeouts, backoff), as other threads' timers would while an
        // application's handler blocks. Drawn from a random of its own, so the rest of each seed's story is unchanged.
        var blocking = new Random(unchecked((seed * 7_919) + 17));
        var clientBlocksAt = blocking.Next(3) == 0 ? -1 : blocking.Next(-1, Math.Max(serverEvents[0], 1));
        var serverBlocksAt = blocking.Next(3) == 0 ? -1 : blocking.Next(-1, clientEvents[0]);
        var blockFor = blocking.Next(3) switch
        {
            0 => TimeSpan.FromTicks(blocking.Next(1, 50) * Ms / 10),      // a moment: within a heartbeat
            1 => TimeSpan.FromMilliseconds(blocking.Next(20, 2_000)),     // across timeouts of the tests' scale
            _ => TimeSpan.FromSeconds(blocking.Next(20, 120)),            // past the heartbeat timeout: links may drop
        };
        // The server's application sends in installments: some when the client says hi, the rest a few at a time at
        // random steps and from inside the moment a server link's socket is disposed (its end under way, its queue not
        // yet handed back to the session): sends at the worst moment. A random of its own, as for the blocking.
        var installments = new Random(unchecked((seed * 104_729) + 31));
        var firstInstallment = serverEvents.Select(n => installments.Next(0, n + 1)).ToArray();
        var installment = installments.Next(1, 40);
        var sendAtStepOneIn = installments.Next(2, 60);
        var scheduler = new TestScheduler();
        var time = new SchedulerTimeProvider(scheduler);
        var plan = FaultPlan.Draw(seed, random, time, maxCuts: 8, maxBytesBeforeCut: 40_000);
        var story = $"{clients} clients sending [{string.Join(",", clientEvents)}] events, server sending [{string.Join(",", serverEvents)}], reconnect at steps [{string.Join(",", reconnectAt)}], queued reconnect at [{string.Join(",", queuedReconnectAt)}], a client subscriber throws at {clientThrowsAt}, a server subscriber at {serverThrowsAt}, a client subscriber blocks at {clientBlocksAt} and a server subscriber at {serverBlocksAt} for {blockFor.TotalMilliseconds} ms, one Send in {awaitedOneIn}, a session Set in {setOneIn}, the server closes at [{string.Join(",", closeAt)}] and aborts at [{string.Join(",", abortAt)}], the server sends [{string.Join(",", firstInstallment)}] at hi then {installment} at a time (one step in {sendAtStepOneIn}, and as a link's socket goes), rest every ~{runBetweenSteps} steps, tick every ~{tickEvery}, {(quitter < 0 ? "no client quits" : $"client {quitter} is disposed at step {quitAt}")}, {plan.Story}";

        var memory = new MemoryTransport();
        var faults = new FaultInjectingTransport(memory, plan);
        var trace = new StringBuilder();
        var verbose = Environment.GetEnvironmentVariable("UHURA_SIM_VERBOSE") == "1";
        void Log(string line)
        {
            if (verbose)
            {
                Console.Error.WriteLine($"[{scheduler.Clock / Ms} ms] {line}");
            }
        }

        var violations = new List<string>();
        var name = $"memory://sim-{seed}-{protocol}";

        var atServer = Lists(clients);
        var merged = Lists(clients);
        var atClient = Lists(clients);
        var serverSends = new List<Task>();
        var serverSendsToQuitter = new List<Task>(); // may wait for the session until the server is disposed
        var serverSent = new int[clients];
        var sendsTo = new Connection?[clients]; // the connection each client's hi arrived on: the server sends through it
        var server = new UhuraServer(UhuraServerOptions.Default with
        {
            Transport = new DisposalHookTransport(memory, () => SendInstallments(installment)),
            Connection = ConnectionOptions.Default with { TimeProvider = time },
        });
        var endsReceived = 0;
        var links = 0;
        var serverThrew = false;
        var serverBlocked = false;
        var clientBlocked = false;
        var serverLinks = new List<Connection>();
        var setsAtServer = 0;
        server.Events.Where(e => e.Name == "n").Subscribe(e => merged[e.Arg<int>(0)].Add(e.Arg<int>(1)));
        server.Connections.Subscribe(connection =>
        {
            var link = ++links;
            serverLinks.Add(connection);
            trace.Append($"link {link} at {scheduler.Clock / Ms}\n");
            Log($"server link {link}: {connection}");
            connection.Session.Changes.Subscribe(change => Log($"server link {link} session {change.Origin} {change.Key}={change.Value?.ToString(Newtonsoft.Json.Formatting.None)}"));
            connection.Disconnected.Subscribe(d => Log($"server link {link} ended: {d.Reason} {d.Error?.Message}"));
            connection.Event("n").Subscribe(e =>
            {
                var (c, n) = (e.Arg<int>(0), e.Arg<int>(1));
                atServer[c].Add(n);
                trace.Append($"s{c}.{n}@{link}:{scheduler.Clock / Ms} ");
            });
            connection.Event("n").Subscribe(e =>
            {
                var (c, n) = (e.Arg<int>(0), e.Arg<int>(1));
                if (random.Next(setOneIn) == 0)
                {
                    var key = sharedKeys ? $"k{random.Next(3)}" : $"s{random.Next(3)}";
                    Log($"server link {link} sets {key}=server {setsAtServer + 1}");
                    connection.Session.Set(key, $"server {++setsAtServer}");
                }

                if (c == 0 && closeAt.Remove(n))
                {
                    _ = connection.CloseAsync(); // from inside the subscriber, as a user might
                }

                if (c == 0 && abortAt.Remove(n))
                {
                    connection.Dispose();
                }

                if (c == 0 && n == serverBlocksAt && !serverBlocked)
                {
                    serverBlocked = true;
                    Block("server");
                }

                if (c == 0 && n == serverThrowsAt && !serverThrew)
                {
                    serverThrew = true;
                    throw new InvalidOperationException($"a server subscriber throws at {serverThrowsAt}");
                }
            });
            connection.Event("end").Subscribe(_ => endsReceived++);
            connection.Event("hi").Subscribe(e =>
            {
                // The client's first event, delivered once: the server's events go to that session, across its later links.
                var c = e.Arg<int>(0);
                sendsTo[c] = connection;
                SendServerEvents(c, firstInstallment[c]);
            });
        });
        await server.ListenAsync(name);

        var clientThrew = false;
        var lastDropped = new string?[clients];
        var eventsEnded = new bool[clients];
        var uhura = new UhuraClient[clients];
        var started = new Task[clients];
        for (var c = 0; c < clients; c++)
        {
            var client = uhura[c] = UhuraClient.Create(name, new UhuraClientOptions
            {
                Protocol = protocol,
                Transport = faults,
                Connection = ConnectionOptions.Default with { TimeProvider = time },
                Reconnect = new ReconnectOptions { FirstDelay = TimeSpan.FromMilliseconds(1), MaxDelay = TimeSpan.FromMilliseconds(20), Randomizer = random.NextDouble },
            });
            var index = c;
            client.Events.Subscribe(_ => { }, _ => eventsEnded[index] = true, () => eventsEnded[index] = true);
            client.Dropped.Subscribe(d => lastDropped[index] = $"{d.GetType().Name}: {d.Message}");
            client.Event("s").Subscribe(e =>
            {
                if (index == 0 && e.Arg<int>(0) == clientBlocksAt && !clientBlocked)
                {
                    clientBlocked = true;
                    Block("client");
                }

                if (index == 0 && e.Arg<int>(0) == clientThrowsAt && !clientThrew)
                {
                    clientThrew = true;
                    throw new InvalidOperationException($"a client subscriber throws at {clientThrowsAt}");
                }
            });
            client.Event("s").Subscribe(e =>
            {
                var n = e.Arg<int>(0);
                atClient[index].Add(n);
                trace.Append($"c{index}.{n}:{scheduler.Clock / Ms} ");
            });
            client.Session.Changes.Subscribe(change => Log($"client {index} session {change.Origin} {change.Key}={change.Value?.ToString(Newtonsoft.Json.Formatting.None)}"));
            client.State.Subscribe(state => Log($"client {index} {state}"));
            started[c] = client.StartAsync();
            client.Post("hi", c);
        }

        var next = new int[clients];
        var sends = new List<Task>();
        var quitterSends = new List<Task>(); // complete, acknowledged or failed, once it is disposed
        Task? quitting = null;
        for (var step = 0; step < steps; step++)
        {
            if (step == quitAt && quitter >= 0)
            {
                Log($"client {quitter} disposed");
                quitting = uhura[quitter].DisposeAsync().AsTask();
                steps -= clientEvents[quitter] - next[quitter];
                clientEvents[quitter] = next[quitter]; // it sends no more
                if (step >= steps)
                {
                    break;
                }
            }

            var c = random.Next(clients);
            while (next[c] == clientEvents[c])
            {
                c = (c + 1) % clients;
            }

            var client = uhura[c];
            if (reconnectAt.Contains(step))
            {
                Log($"client {c} Reconnect()");
                client.Reconnect();
            }

            if (queuedReconnectAt.Contains(step))
            {
                ThreadPool.UnsafeQueueUserWorkItem(static c => c.Reconnect(), client, preferLocal: false);
            }

            var i = next[c]++;
            if (random.Next(setOneIn) == 0)
            {
                var key = sharedKeys ? $"k{random.Next(3)}" : $"c{random.Next(3)}";
                Log($"client {c} sets {key}=client {c} step {step}");
                client.Session.Set(key, $"client {c} step {step}");
            }

            if (random.Next(awaitedOneIn) == 0)
            {
                var send = client.Send("n", c, i);
                (c == quitter ? quitterSends : sends).Add(send);
                var received = atServer[c];
                _ = send.ContinueWith(t => Check(t, received, i, $"client {c}'s send {i}"), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            }
            else if (!client.Post("n", c, i))
            {
                return Outcome($"client {c}'s Post({i}) was refused: {lastDropped[c]}");
            }

            if (installments.Next(sendAtStepOneIn) == 0)
            {
                SendInstallments(installment);
            }

            if (random.Next(runBetweenSteps) == 0)
            {
                await SingleThread.QuiesceAsync();
            }
            else if (random.Next(4) == 0)
            {
                await SingleThread.BehindEverythingQueued(); // part of what is queued runs
            }

            if (random.Next(tickEvery) == 0)
            {
                scheduler.AdvanceBy(random.Next(1, 3) * Ms);
            }
        }

        var stayed = Enumerable.Range(0, clients).Where(c => quitting is null || c != quitter).ToList();
        await RunUntilAsync(scheduler, VirtualDeadline, () => stayed.TrueForAll(c => sendsTo[c] is not null)); // every hi arrived
        SendInstallments(int.MaxValue); // the rest
        sends.AddRange(stayed.Select(c => uhura[c].Send("end")));
        var stuck = await RunUntilAsync(scheduler, VirtualDeadline, () => stayed.TrueForAll(c => started[c].IsCompleted) && sends.TrueForAll(t => t.IsCompleted)
            && endsReceived == stayed.Count && serverSends.TrueForAll(t => t.IsCompleted) && stayed.Sum(c => atClient[c].Count) >= stayed.Sum(c => serverEvents[c])
            && (quitting is null || (quitting.IsCompleted && quitterSends.TrueForAll(t => t.IsCompleted) && eventsEnded[quitter])));
        if (stuck is not null)
        {
            return Outcome($"stuck {stuck}: {started.Count(t => !t.IsCompleted)} starts, quitter {quitting?.Status} with {quitterSends.Count(t => !t.IsCompleted)} sends pending, {sends.Count(t => !t.IsCompleted)} client sends, {serverSends.Count(t => !t.IsCompleted)} server sends pending, {endsReceived}/{clients} ends received, [{string.Join(",", atServer.Select(l => l.Count))}] at the server, [{string.Join(",", atClient.Select(l => l.Count))}] at the clients, {faults.Connections} connections, {faults.Cuts} cuts, clients {string.Join(",", uhura.Select(u => u.CurrentState.Status))}");
        }

        if (stayed.Select(c => started[c]).Concat(sends).Concat(serverSends).FirstOrDefault(t => t.IsFaulted) is { } failed)
        {
            return Outcome($"a send failed: {failed.Exception!.GetBaseException().Message}");
        }

        for (var c = 0; c < clients; c++)
        {
            if (quitting is not null && c == quitter)
            {
                // What it sent before it was disposed: in order, each at most once (a send acknowledged was delivered: checked below).
                if ((Unordered($"the quitter's events at the server", atServer[c]) ?? Unordered("the quitter's events on server.Events", merged[c]) ?? Unordered("the server's events at the quitter", atClient[c])) is { } broken)
                {
                    return Outcome(broken);
                }

                continue;
            }

            if ((Disorder($"client {c}'s events at the server", clientEvents[c], atServer[c]) ?? Disorder($"client {c}'s events on server.Events", clientEvents[c], merged[c])
                ?? Disorder($"the server's events at client {c}", serverEvents[c], atClient[c])) is { } disorder)
            {
                return Outcome(disorder);
            }
        }

        if (violations.Count > 0)
        {
            return Outcome($"acknowledged before delivery: {string.Join("; ", violations.Take(5))}");
        }

        // At rest with every link up, both sides of each session hold the same keys.
        stuck = await RunUntilAsync(scheduler, VirtualDeadline, () => stayed.TrueForAll(c => uhura[c].CurrentState.Status == ConnectionStatus.Connected));
        foreach (var c in stayed)
        {
            if (stuck is not null)
            {
                break;
            }

            var mine = uhura[c].Session.Get();
            // The server's copy is its latest link's of that session (an ended link's copy stays as the link left it).
            var theirs = serverLinks.LastOrDefault(l => l.Session.Id == uhura[c].Session.Id)?.Session.Get() ?? new Dictionary<string, JToken>();
            foreach (var key in mine.Keys.Union(theirs.Keys))
            {
                if (!JToken.DeepEquals(mine.GetValueOrDefault(key), theirs.GetValueOrDefault(key)))
                {
                    return Outcome($"client {c}'s session diverged on '{key}': client {mine.GetValueOrDefault(key)?.ToString(Newtonsoft.Json.Formatting.None) ?? "(none)"}, server {theirs.GetValueOrDefault(key)?.ToString(Newtonsoft.Json.Formatting.None) ?? "(none)"}");
                }
            }

            trace.Append($"\nsession {c}: {string.Join(",", mine.Where(p => p.Key != UhuraSession.IdKey).OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => $"{p.Key}={p.Value}"))}");
        }

        if (stuck is not null)
        {
            return Outcome($"a client did not come back {stuck}: {string.Join(",", uhura.Select(u => u.CurrentState.Status))}");
        }

        var disposed = Task.WhenAll(uhura.Select(u => u.DisposeAsync().AsTask()).Append(server.DisposeAsync().AsTask()));
        stuck = await RunUntilAsync(scheduler, VirtualDeadline, () => disposed.IsCompleted && Array.TrueForAll(eventsEnded, ended => ended) && serverSendsToQuitter.TrueForAll(t => t.IsCompleted));
        if (stuck is not null)
        {
            return Outcome($"disposal stuck {stuck}: {disposed.Status}, client events ended [{string.Join(",", eventsEnded)}], {serverSendsToQuitter.Count(t => !t.IsCompleted)} server sends to the quitter pending");
        }

        trace.Append($"\nend at {scheduler.Clock / Ms} after {faults.Connections} connections and {faults.Cuts} cuts");
        return Outcome(null);

        void SendInstallments(int count)
        {
            for (var c = 0; c < clients; c++)
            {
                SendServerEvents(c, count);
            }
        }

        void SendServerEvents(int c, int count)
        {
            if (sendsTo[c] is not { } connection)
            {
                return; // its hi has not arrived yet
            }

            for (var sent = 0; sent < count && serverSent[c] < serverEvents[c]; sent++)
            {
                var n = serverSent[c]++;
                var send = connection.Send("s", n);
                (c == quitter ? serverSendsToQuitter : serverSends).Add(send);
                _ = send.ContinueWith(t => Check(t, atClient[c], n, $"the server's send {n} to client {c}"), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            }
        }

        void Block(string who)
        {
            if (scheduler.IsEnabled)
            {
                return; // called from inside a timer of the clock: it cannot move from there
            }

            Log($"a {who} subscriber blocks for {blockFor.TotalMilliseconds} ms");
            scheduler.AdvanceBy(blockFor.Ticks);
        }

        void Check(Task send, List<int> deliveredTo, int n, string what)
        {
            if (send.IsCompletedSuccessfully && !deliveredTo.Contains(n))
            {
                violations.Add($"{what} completed before its event was delivered");
            }
        }

        SimulationOutcome Outcome(string? failure) =>
            new(seed, protocol.ToString(), failure, Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(trace.ToString())))[..16], $"{story}; {faults.Connections} connections, {faults.Cuts} cuts, virtual {scheduler.Clock / Ms} ms");
    }

    /// <summary>Lets the library run to rest, then moves the clock a millisecond, until the condition holds or the virtual deadline passed.</summary>
    public static Task<string?> RunUntilAsync(TestScheduler scheduler, Func<bool> done, TimeSpan limit) => RunUntilAsync(scheduler, limit, done);

    private static async Task<string?> RunUntilAsync(TestScheduler scheduler, TimeSpan limit, Func<bool> done)
    {
        var deadline = scheduler.Clock + limit.Ticks;
        while (true)
        {
            await SingleThread.QuiesceAsync();
            if (done())
            {
                return null;
            }

            if (scheduler.Clock >= deadline)
            {
                return $"after {limit.TotalSeconds} virtual seconds";
            }

            scheduler.AdvanceBy(Ms);
        }
    }

    private static List<int>[] Lists(int count) => [.. Enumerable.Range(0, count).Select(_ => new List<int>())];

    private static HashSet<int> Draw(Random random, int count, int below) => [.. Enumerable.Range(0, count).Select(_ => random.Next(below))];

    /// <summary>Null when <paramref name="received"/> rises strictly (in order, nothing twice, gaps allowed).</summary>
    private static string? Unordered(string where, List<int> received)
    {
        for (var i = 1; i < received.Count; i++)
        {
            if (received[i] <= received[i - 1])
            {
                return $"{where}: {received[i]} after {received[i - 1]} (at {i} of {received.Count})";
            }
        }

        return null;
    }

    private static string? Disorder(string where, int count, List<int> received)
    {
        if (received.Count == count && received.Select((n, i) => n == i).All(x => x))
        {
            return null;
        }

        var duplicates = received.Count - received.Distinct().Count();
        var missing = Enumerable.Range(0, count).Except(received).Take(10).ToList();
        var firstOutOfOrder = received.Select((n, i) => (n, i)).FirstOrDefault(p => p.n != p.i);
        return $"{where} {received.Count}/{count} received, {duplicates} duplicates, first missing [{string.Join(",", missing)}], first out of place {firstOutOfOrder.n} at {firstOutOfOrder.i}";
    }
}

/// <summary>A transport whose accepted streams call <c>onDispose</c> when they are disposed, before their socket goes.</summary>
internal sealed class DisposalHookTransport(ITransport inner, Action onDispose) : ITransport
{
    public async ValueTask<ITransportListener> BindAsync(System.Net.EndPoint endPoint, CancellationToken cancellationToken = default)
        => new Listener(await inner.BindAsync(endPoint, cancellationToken).ConfigureAwait(false), onDispose);

    public ValueTask<Stream> ConnectAsync(System.Net.EndPoint endPoint, CancellationToken cancellationToken = default)
        => inner.ConnectAsync(endPoint, cancellationToken);

    private sealed class Listener(ITransportListener inner, Action onDispose) : ITransportListener
    {
        public System.Net.EndPoint EndPoint => inner.EndPoint;

        public async ValueTask<Stream?> AcceptAsync(CancellationToken cancellationToken = default)
            => await inner.AcceptAsync(cancellationToken).ConfigureAwait(false) is { } stream ? new Rx.Uhura.Tests.Core.DisposalHookStream(stream, onDispose) : null;

        public ValueTask DisposeAsync() => inner.DisposeAsync();
    }
}
