using System.CommandLine;
using System.Globalization;
using Microsoft.Extensions.Logging;
using Newtonsoft.Json.Linq;
using Spectre.Console;

namespace Rx.Uhura.Cli;

/// <summary>
/// <c>uhura send --connect URI [--protocol P] EVENT [ARG_JSON ...] [--count N] [--wait-reply] [--timeout SECONDS]</c>:
/// sends events and exits 0 only when the peer acknowledged every one (socket-ipc, which has no acks: when every one was
/// written and flushed), then, with <c>--wait-reply</c>, prints the first event the peer sent.
/// </summary>
/// <remarks>
/// <para>
/// The client reconnects with backoff (the library's reconnection, <see cref="Common.Reconnect"/>) until
/// <c>--timeout</c>, whether the first connect fails or a link drops mid-run: unacknowledged events are resent on the
/// next link and the server drops duplicates, so no event is lost or delivered twice.
/// </para>
/// <para>
/// socket-ipc: EVENT is the topic and the one ARG_JSON, if any, the message (two or more are bad usage: the wire carries
/// one message per topic). With <c>--count N</c> the message of event n is n without an ARG_JSON, <c>[n, ARG]</c> with
/// one: the arguments the other wires would send, the sequence number first, packed into the one message when there
/// are two. Sends made while no link is up wait for the next one (<see cref="UhuraClientOptions.QueueWhileDisconnected"/>),
/// and events whose write had not completed when a link drops are written again on the next. The wire has no acks, so
/// an event written just before a drop can still be lost (the peer never read it) or, from a write that failed
/// half-way, arrive twice.
/// </para>
/// </remarks>
internal static class SendCommand
{
    /// <summary>At most this many events wait for their acknowledgement at once.</summary>
    private const int Window = 1000;

    public static Command Create()
    {
        var connect = Common.EndpointOption("--connect", "The server to send to;");
        var protocol = Common.ProtocolOption();
        var eventName = new Argument<string>("EVENT") { Description = "The event name." };
        var args = new Argument<string[]>("ARG_JSON")
        {
            Description = "The event's arguments, each parsed as JSON (a string is '\"text\"'). socket-ipc: at most one, the message (EVENT is the topic).",
            Arity = ArgumentArity.ZeroOrMore,
        };
        var count = new Option<int?>("--count")
        {
            Description = "Send N events whose first argument is the sequence number 0..N-1, followed by the given arguments. socket-ipc: the message is n, or [n, ARG] with an ARG_JSON.",
            HelpName = "N",
        };
        var waitReply = new Option<bool>("--wait-reply")
        {
            Description = "After every event was acknowledged (socket-ipc: written), wait for one event from the peer and print it.",
        };
        var timeout = new Option<double>("--timeout")
        {
            Description = "Give up (exit 1) after this many seconds in all.",
            HelpName = "SECONDS",
            DefaultValueFactory = _ => 30,
        };

        var command = new Command("send", "Send an event (or N numbered events) and wait until the peer acknowledged them (socket-ipc, which has no acks: until they were written).")
        {
            connect, protocol, eventName, args, count, waitReply, timeout,
        };
        var tls = new TlsFlags(TlsFlags.Role.Client);
        tls.AddTo(command);
        command.SetAction((parse, cancellationToken) => RunAsync(
            new Settings(
                parse.GetValue(connect),
                tls.Read(parse),
                parse.GetValue(protocol),
                parse.GetValue(eventName) ?? string.Empty,
                parse.GetValue(args) ?? [],
                parse.GetValue(count),
                parse.GetValue(waitReply),
                parse.GetValue(timeout),
                parse.GetValue(Common.Verbose),
                OutputMode.ProgressConsole(parse)),
            cancellationToken));
        return command;
    }

    private sealed record Settings(
        string? Uri, Transport.TlsOptions? Tls, string? Protocol, string EventName, string[] Args, int? Count, bool WaitReply, double TimeoutSeconds, bool Verbose,
        IAnsiConsole? Progress);

    private static async Task<int> RunAsync(Settings settings, CancellationToken stop)
    {
        var wire = Common.ParseClientProtocol(settings.Protocol);
        var endPoint = Common.ParseEndpoint(settings.Uri, wire);
        var args = settings.Args.Select(Common.ParseJsonArgument).ToArray();
        if (wire == WireProtocol.SocketIpc && args.Length > 1)
        {
            throw new UsageException($"{Common.SocketIpcProtocol} carries one message per topic: give at most one ARG_JSON (an array or object for more), not {args.Length}.");
        }
        if (settings.Count is < 1)
        {
            throw new UsageException($"--count must be at least 1 (got {settings.Count}).");
        }

        if (!(settings.TimeoutSeconds > 0) || double.IsInfinity(settings.TimeoutSeconds) || settings.TimeoutSeconds > int.MaxValue / 1000)
        {
            throw new UsageException($"--timeout must be a positive number of seconds (got {settings.TimeoutSeconds.ToString(CultureInfo.InvariantCulture)}).");
        }

        var timeout = TimeSpan.FromSeconds(settings.TimeoutSeconds);
        using var logging = Common.CreateLoggerFactory(settings.Verbose);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(stop);
        deadline.CancelAfter(timeout);

        // The library reconnects (the first connect included) with backoff until the deadline; unacknowledged sends are
        // resent on the next link and the server drops duplicates, so each send completes when the server has it.
        // socket-ipc has no acks and by default refuses sends while disconnected: queue them for the next link instead.
        var client = UhuraClient.Connect(endPoint, new UhuraClientOptions
        {
            Connection = ConnectionOptions.Default with { LoggerFactory = logging },
            ConnectTimeout = timeout < Common.AttemptTimeout ? timeout : Common.AttemptTimeout,
            Reconnect = Common.Reconnect,
            Protocol = wire,
            QueueWhileDisconnected = true,
            Tls = settings.Tls,
        });
        var done = wire == WireProtocol.SocketIpc ? "written" : "acknowledged";
        var progress = new ConnectProgress(logging.CreateLogger("uhura.send"));
        using var states = client.State.Subscribe(progress.OnState);
        var sends = new SendTracker(settings.Count ?? 1);
        var finished = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var display = settings.Progress is { } console && sends.Total > 1
            ? ShowProgressAsync(console, settings.EventName, done, sends, finished.Task)
            : Task.CompletedTask;
        var graceful = false;
        try
        {
            var reply = new TaskCompletionSource<UhuraEvent>(TaskCreationOptions.RunContinuationsAsynchronously);
            using var replies = settings.WaitReply
                ? client.Events.Subscribe(
                    e => reply.TrySetResult(e),
                    _ => reply.TrySetException(new CliFailureException("the connection ended before a reply arrived.")),
                    () => reply.TrySetException(new CliFailureException("the connection ended before a reply arrived.")))
                : null;

            for (var i = 0; i < sends.Total && !sends.Failed; i++)
            {
                await sends.WaitForRoomAsync(deadline.Token).ConfigureAwait(false);
                Task send;
                try
                {
                    send = client.Send(settings.EventName, ArgsFor(i, settings.Count, args, wire));
                }
                catch (ArgumentException ex) when (i == 0)
                {
                    throw new UsageException($"event name '{settings.EventName}' cannot be sent: {ex.Message}");
                }

                sends.Track(send);
            }

            await sends.WhenAllAsync(deadline.Token).ConfigureAwait(false);
            finished.TrySetResult();
            await display.ConfigureAwait(false);
            if (sends.FirstError is { } error)
            {
                throw new CliFailureException($"sending '{settings.EventName}' failed ({sends.Acknowledged} of {sends.Total} events {done}): {Common.Describe(error)}", error);
            }

            if (settings.WaitReply)
            {
                JsonLines.Stdout.Event(await reply.Task.WaitAsync(deadline.Token).ConfigureAwait(false));
            }

            graceful = true;
            return Exit.Ok;
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            // SIGINT / SIGTERM: close gracefully, exit 0.
            graceful = true;
            return Exit.Ok;
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested)
        {
            var seconds = settings.TimeoutSeconds.ToString(CultureInfo.InvariantCulture);
            var acknowledged = $"{sends.Acknowledged} of {sends.Total} events {done}";
            var why = progress.Describe(settings.Uri, handshaking: client.Connection is not null);
            throw new CliFailureException(sends.Acknowledged == sends.Total
                ? $"timed out after {seconds} s waiting for a reply ({acknowledged})."
                : $"timed out after {seconds} s with {acknowledged}{(why is null ? "." : "; " + why)}");
        }
        finally
        {
            finished.TrySetResult();
            await display.ConfigureAwait(false);
            if (graceful)
            {
                await client.Disconnect().ConfigureAwait(false);
            }
            else
            {
                client.Dispose();
            }
        }
    }

    /// <summary>
    /// <c>--count N</c> on a terminal: a progress bar of the events acknowledged (written, for socket-ipc), redrawn
    /// every 100 ms until <paramref name="finished"/>; left on screen at the end.
    /// </summary>
    private static Task ShowProgressAsync(IAnsiConsole console, string eventName, string done, SendTracker sends, Task finished)
        => console.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .StartAsync(async context =>
            {
                var task = context.AddTask($"{Markup.Escape(eventName)} [grey]({sends.Total} events, {done})[/]", maxValue: sends.Total);
                while (!finished.IsCompleted)
                {
                    task.Value = sends.Acknowledged;
                    await Task.WhenAny(finished, Task.Delay(100)).ConfigureAwait(false);
                }

                task.Value = sends.Acknowledged;
                task.StopTask();
            });

    /// <summary>
    /// Remembers whether the client ever connected and why the last attempt failed, for the timeout message; logs each
    /// state (debug level: on stderr with <c>--verbose</c>).
    /// </summary>
    private sealed class ConnectProgress(ILogger logger)
    {
        private volatile ConnectionState? _current;
        private volatile bool _connected;
        private volatile Exception? _lastError;

        public void OnState(ConnectionState state)
        {
            logger.LogDebug("Connection state: {State}", state);
            _current = state;
            if (state.Status == ConnectionStatus.Connected)
            {
                _connected = true;
            }
            else if (state.Status == ConnectionStatus.Reconnecting && state.Error is { } error)
            {
                _lastError = error;
            }
        }

        /// <summary>What went wrong with the connection, when it is not up; null when it is.</summary>
        public string? Describe(string? uri, bool handshaking)
        {
            if (_current is { Status: ConnectionStatus.Connected })
            {
                return null;
            }

            var error = handshaking ? ": the server has not completed the handshake"
                : _lastError is { } e ? ": " + Common.Describe(e)
                : string.Empty;
            return _connected
                ? $"the connection to {uri} was lost and not restored{error}"
                : $"could not connect to {uri}{error}";
        }
    }

    /// <summary>
    /// The arguments of event <paramref name="index"/>: the sequence number first with <c>--count</c>, then the given
    /// ones. socket-ipc sends one message, so a sequence number and an ARG_JSON go as the array <c>[n, ARG]</c>.
    /// </summary>
    private static object?[] ArgsFor(int index, int? count, JToken[] args, WireProtocol wire)
    {
        var withSequence = count is null ? args : [new JValue(index), .. args];
        if (wire == WireProtocol.SocketIpc && withSequence.Length > 1)
        {
            return [new JArray(withSequence.Select(a => a.DeepClone()))];
        }

        return [.. withSequence.Select(a => (object?)a.DeepClone())];
    }

    /// <summary>Counts outstanding sends, bounds them to <see cref="Window"/>, remembers the first failure.</summary>
    private sealed class SendTracker(int total)
    {
        private readonly SemaphoreSlim _room = new(Window, Window);
        private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _outstanding = 1;
        private int _acknowledged;
        private Exception? _firstError;

        public int Total { get; } = total;

        public int Acknowledged => Volatile.Read(ref _acknowledged);

        public bool Failed => Volatile.Read(ref _firstError) is not null;

        public Exception? FirstError => Volatile.Read(ref _firstError);

        public Task WaitForRoomAsync(CancellationToken cancellationToken) => _room.WaitAsync(cancellationToken);

        public void Track(Task send)
        {
            Interlocked.Increment(ref _outstanding);
            send.ContinueWith(
                static (t, state) => ((SendTracker)state!).Completed(t),
                this,
                CancellationToken.None,
                TaskContinuationOptions.ExecuteSynchronously,
                TaskScheduler.Default);
        }

        /// <summary>Completes once every tracked send completed (call after the last <see cref="Track"/>).</summary>
        public Task WhenAllAsync(CancellationToken cancellationToken)
        {
            Release();
            return _done.Task.WaitAsync(cancellationToken);
        }

        private void Completed(Task send)
        {
            if (send.IsFaulted || send.IsCanceled)
            {
                Interlocked.CompareExchange(ref _firstError, send.Exception?.InnerExceptions[0] ?? new OperationCanceledException("The send was canceled."), null);
            }
            else
            {
                Interlocked.Increment(ref _acknowledged);
            }

            _room.Release();
            Release();
        }

        private void Release()
        {
            if (Interlocked.Decrement(ref _outstanding) == 0)
            {
                _done.TrySetResult();
            }
        }
    }
}
