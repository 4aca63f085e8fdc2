using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Rx.Uhura.Internal;
using Rx.Uhura.Scaleout;

namespace Rx.Uhura;

/// <summary>Scale-out: <see cref="Broadcast"/> and <see cref="SendTo"/> across the servers of a <see cref="UhuraServerOptions.Backplane"/>.</summary>
public sealed partial class UhuraServer
{
    private BackplaneLink? _backplane; // null without a backplane: nothing on the hot path but this test

    /// <summary>This server's id on the backplane: <see cref="UhuraServerOptions.ServerId"/>, or a random one.</summary>
    public string ServerId { get; private set; } = "";

    private void InitBackplane()
    {
        ServerId = _options.ServerId ?? Guid.NewGuid().ToString("N");
        if (_options.Backplane is { } backplane)
        {
            _backplane = new BackplaneLink(this, backplane);
        }
    }

    /// <summary>A <see cref="SendTo"/> whose client is not connected here: asks the other servers, or fails.</summary>
    private void SendElsewhere(string clientId, OutboundMessage message)
    {
        if (_backplane is { } backplane)
        {
            backplane.SendRemote(clientId, message);
        }
        else
        {
            message.Fail(new BadClientException(message.Name, clientId));
        }
    }

    private Task CloseBackplaneAsync() => _backplane?.CloseAsync() ?? Task.CompletedTask;

    private void DisposeBackplane() => _backplane?.Dispose();

    private void ReportError(UhuraException error)
    {
        lock (_publishGate)
        {
            try
            {
                _errors.OnNext(error);
            }
            catch (Exception ex)
            {
                _logger.LogError(ex, "A subscriber of Errors threw");
            }
        }
    }

    /// <summary>
    /// The server's side of the backplane: one bounded outbox published in order by one loop (so callers never wait on
    /// the backplane), the messages of other servers, and the sends to other servers' clients awaiting their outcome.
    /// </summary>
    private sealed class BackplaneLink : IDisposable
    {
        private readonly UhuraServer _server;
        private readonly IUhuraBackplane _backplane;
        private readonly Channel<BackplaneMessage> _outbox;
        private readonly ConcurrentDictionary<long, PendingSend> _pending = new();
        private readonly CancellationTokenSource _stop = new();
        private readonly IDisposable _messages;
        private readonly IDisposable _errors;
        private readonly Task _pump;
        private readonly int _limit;
        private long _correlation;

        public BackplaneLink(UhuraServer server, IUhuraBackplane backplane)
        {
            _server = server;
            _backplane = backplane;
            _limit = server._options.BackplaneQueueLimit;
            _outbox = Channel.CreateBounded<BackplaneMessage>(new BoundedChannelOptions(_limit) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });
            _messages = backplane.Messages.Subscribe(
                OnMessage,
                ex => _server.ReportError(new BackplaneException($"The backplane's message stream failed; server {_server.ServerId} no longer hears the others: {ex.Message}", ex)),
                () => _server._logger.LogInformation("The backplane's message stream completed"));
            _errors = backplane.Errors.Subscribe(_server.ReportError, _ => { });
            _pump = Task.Run(PumpAsync);
        }

        private string Id => _server.ServerId;

        private ILogger Logger => _server._logger;

        public void PublishBroadcast(OutboundMessage message)
        {
            if (!_outbox.Writer.TryWrite(new BackplaneMessage(BackplaneMessageKind.Broadcast, Id, null, null, 0, message.Payload)))
            {
                Logger.LogWarning("The backplane queue is full ({Limit}): broadcast {Event} was not forwarded", _limit, message.Name);
                _server.ReportError(new BackplaneException($"The backplane queue is full ({_limit} messages): broadcast '{message.Name}' was not forwarded to the other servers."));
            }
        }

        public void SendRemote(string clientId, OutboundMessage message)
        {
            if (_pending.Count >= _limit)
            {
                message.Fail(new OutboundBufferFullException(message.Name, $"{_pending.Count} sends to clients of other servers await their outcome.") { ConnectionId = clientId });
                return;
            }

            var correlation = Interlocked.Increment(ref _correlation);
            var pending = new PendingSend(message, clientId);
            _pending[correlation] = pending;
            pending.Timer = _server._options.Connection.TimeProvider.CreateTimer(
                static state =>
                {
                    var (link, id) = ((BackplaneLink, long))state!;
                    link.OnTimeout(id);
                },
                (this, correlation),
                _server._options.BackplaneTimeout,
                Timeout.InfiniteTimeSpan);
            if (!_outbox.Writer.TryWrite(new BackplaneMessage(BackplaneMessageKind.ToClient, Id, null, clientId, correlation, message.Payload))
                && _pending.TryRemove(correlation, out _))
            {
                pending.Timer.Dispose();
                message.Fail(new OutboundBufferFullException(message.Name, $"the backplane queue is full ({_limit} messages).") { ConnectionId = clientId });
            }
        }

        private void OnTimeout(long correlation)
        {
            if (_pending.TryGetValue(correlation, out var pending) && !pending.Accepted
                && _pending.TryRemove(new KeyValuePair<long, PendingSend>(correlation, pending)))
            {
                pending.Timer?.Dispose();
                pending.Message.Fail(new BadClientException(pending.Message.Name, pending.ClientId));
            }
        }

        private void OnMessage(BackplaneMessage message)
        {
            if (string.Equals(message.Origin, Id, StringComparison.Ordinal))
            {
                return; // our own, echoed
            }

            try
            {
                switch (message.Kind)
                {
                    case BackplaneMessageKind.Broadcast:
                        if (Volatile.Read(ref _server._closeTask) is null && ToOutbound(message, awaited: false) is { } broadcast)
                        {
                            _server.DeliverToAll(broadcast);
                        }

                        break;
                    case BackplaneMessageKind.ToClient:
                        DeliverToClient(message);
                        break;
                    case BackplaneMessageKind.Accepted or BackplaneMessageKind.Delivered or BackplaneMessageKind.Failed:
                        if (string.Equals(message.Target, Id, StringComparison.Ordinal))
                        {
                            OnReply(message);
                        }

                        break;
                }
            }
            catch (Exception ex)
            {
                Logger.LogError(ex, "Handling backplane message {Message} failed", message);
            }
        }

        private void DeliverToClient(BackplaneMessage request)
        {
            if (request.ClientId is not { } clientId || Volatile.Read(ref _server._closeTask) is not null
                || !_server._ready.TryGetValue(clientId, out var connection) || !connection.IsConnected
                || ToOutbound(request, awaited: true) is not { } message)
            {
                return; // not ours: the server that has the client answers
            }

            if (!connection.Enqueue(message) && !message.IsFailed)
            {
                message.Fail(new SendAfterCloseException(message.Name) { ConnectionId = clientId });
            }

            var task = message.Completion!.Task;
            if (!task.IsCompleted)
            {
                Reply(request, BackplaneMessageKind.Accepted, default);
            }

            task.ContinueWith(
                static (t, state) =>
                {
                    var (link, request) = ((BackplaneLink, BackplaneMessage))state!;
                    if (t.IsCompletedSuccessfully)
                    {
                        link.Reply(request, BackplaneMessageKind.Delivered, default);
                    }
                    else
                    {
                        var error = t.Exception?.InnerException;
                        link.Reply(request, BackplaneMessageKind.Failed, Encoding.UTF8.GetBytes($"{error?.GetType().Name}\n{error?.Message}"));
                    }
                },
                (this, request),
                CancellationToken.None,
                TaskContinuationOptions.ExecuteSynchronously,
                TaskScheduler.Default);
        }

        private void Reply(BackplaneMessage request, BackplaneMessageKind kind, ReadOnlyMemory<byte> payload)
        {
            if (!_outbox.Writer.TryWrite(new BackplaneMessage(kind, Id, request.Origin, request.ClientId, request.CorrelationId, payload)))
            {
                Logger.LogWarning("The backplane queue is full ({Limit}): the {Kind} reply to server {Origin} for client {Client} was dropped", _limit, kind, request.Origin, request.ClientId);
            }
        }

        private void OnReply(BackplaneMessage reply)
        {
            if (reply.Kind == BackplaneMessageKind.Accepted)
            {
                if (_pending.TryGetValue(reply.CorrelationId, out var accepted))
                {
                    accepted.Accepted = true; // the client is there: wait for its outcome, however long
                    accepted.Timer?.Dispose();
                }

                return;
            }

            if (!_pending.TryRemove(reply.CorrelationId, out var pending))
            {
                return; // timed out already, or a second server answered
            }

            pending.Timer?.Dispose();
            if (reply.Kind == BackplaneMessageKind.Delivered)
            {
                pending.Message.Succeed();
            }
            else
            {
                pending.Message.Fail(RemoteError(pending, reply));
            }
        }

        private static SendException RemoteError(PendingSend pending, BackplaneMessage reply)
        {
            var text = Encoding.UTF8.GetString(reply.Payload.Span);
            var newline = text.IndexOf('\n', StringComparison.Ordinal);
            var (type, detail) = newline < 0 ? ("", text) : (text[..newline], text[(newline + 1)..]);
            var name = pending.Message.Name;
            SendException error = type switch
            {
                nameof(BadClientException) => new BadClientException(name, pending.ClientId),
                nameof(ConnectionLostException) => new ConnectionLostException(name),
                nameof(SendAfterCloseException) => new SendAfterCloseException(name),
                nameof(OutboundBufferFullException) => new OutboundBufferFullException(name, $"on server {reply.Origin}: {detail}"),
                _ => new SendException(name, $"Server {reply.Origin} could not deliver '{name}' to client {pending.ClientId}: {detail}"),
            };
            error.ConnectionId = pending.ClientId;
            return error;
        }

        /// <summary>The event of a backplane message, as the outbound message local connections write: the same payload bytes.</summary>
        private OutboundMessage? ToOutbound(BackplaneMessage message, bool awaited)
        {
            var payload = message.Payload;
            string? name = null;
            var nameEnd = 0;
            try
            {
                var reader = new Utf8JsonReader(payload.Span);
                if (reader.Read() && reader.TokenType == JsonTokenType.StartArray && reader.Read() && reader.TokenType == JsonTokenType.String)
                {
                    name = reader.GetString();
                    nameEnd = (int)reader.BytesConsumed;
                }
            }
            catch (JsonException)
            {
            }

            if (name is null || nameEnd >= payload.Length || payload.Span[nameEnd] is not ((byte)',' or (byte)']'))
            {
                Logger.LogWarning("Ignored backplane message {Message}: its payload is not an encoded event", message);
                return null;
            }

            var bytes = MemoryMarshal.TryGetArray(payload, out var segment) && segment.Offset == 0 && segment.Count == segment.Array!.Length
                ? segment.Array
                : payload.ToArray();
            return new OutboundMessage(name, bytes, awaited, nameEnd);
        }

        private async Task PumpAsync()
        {
            var reader = _outbox.Reader;
            try
            {
                while (await reader.WaitToReadAsync(_stop.Token).ConfigureAwait(false))
                {
                    while (reader.TryRead(out var message))
                    {
                        try
                        {
                            await _backplane.PublishAsync(message, _stop.Token).ConfigureAwait(false);
                        }
                        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
                        {
                            return;
                        }
                        catch (Exception ex)
                        {
                            OnPublishFailed(message, ex);
                        }
                    }
                }
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested)
            {
            }
        }

        private void OnPublishFailed(BackplaneMessage message, Exception ex)
        {
            Logger.LogError(ex, "Publishing {Message} on the backplane failed; it is lost", message);
            if (message.Kind == BackplaneMessageKind.ToClient && _pending.TryRemove(message.CorrelationId, out var pending))
            {
                pending.Timer?.Dispose();
                pending.Message.Fail(new SendException(pending.Message.Name, $"Cannot send '{pending.Message.Name}' to client {pending.ClientId}: the backplane failed: {ex.Message}", ex) { ConnectionId = pending.ClientId });
                return;
            }

            _server.ReportError(new BackplaneException($"Publishing a {message.Kind} on the backplane failed; it is lost: {ex.Message}", ex));
        }

        /// <summary>After the local connections closed (their outcomes are published): drains the outbox for up to the close timeout.</summary>
        public async Task CloseAsync()
        {
            _messages.Dispose();
            _errors.Dispose();
            _outbox.Writer.TryComplete();
            try
            {
                await _pump.WaitAsync(_server._options.Connection.CloseTimeout, _server._options.Connection.TimeProvider).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                Logger.LogWarning("The backplane did not take the last messages within the close timeout; they are lost");
            }

            Dispose();
        }

        public void Dispose()
        {
            _messages.Dispose();
            _errors.Dispose();
            _outbox.Writer.TryComplete();
            _stop.Cancel();
            foreach (var (correlation, pending) in _pending)
            {
                if (_pending.TryRemove(correlation, out _))
                {
                    pending.Timer?.Dispose();
                    pending.Message.Fail(new SendAfterCloseException(pending.Message.Name) { ConnectionId = pending.ClientId });
                }
            }
        }

        private sealed class PendingSend(OutboundMessage message, string clientId)
        {
            private volatile bool _accepted;

            public OutboundMessage Message { get; } = message;

            public string ClientId { get; } = clientId;

            public ITimer? Timer { get; set; }

            public bool Accepted { get => _accepted; set => _accepted = value; }
        }
    }
}
