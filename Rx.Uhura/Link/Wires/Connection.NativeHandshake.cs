using System.Text;
using Microsoft.Extensions.Logging;
using Newtonsoft.Json;
using Newtonsoft.Json.Linq;
using Rx.Uhura.Internal;
using Rx.Uhura.Protocol;
using Rx.Uhura.Protocol.Native;
using Rx.Uhura.Session;

namespace Rx.Uhura;

public sealed partial class Connection
{
    /// <summary>Client: preface, then Hello with the session, the resume position and the features asked for.</summary>
    private void SendNativeHello()
    {
        Session.AttachSink(this);
        var stream = _native!;
        _sentSessionId = Session.Id;
        var sessionId = Session.Id;
        var features = NativeFeatures.Heartbeats | NativeFeatures.SessionOrder | NativeFeatures.Instances | (_options.EnableAcks ? NativeFeatures.Acks : 0);
        ulong lastReceived = 0;
        string? instance;
        lock (stream.Gate)
        {
            instance = stream.ServerReadsInstances ? stream.Instance : null;
            if (sessionId is null)
            {
                // No session yet: the client names the one it wants, so that should this link drop before its Welcome
                // is read, the next Hello finds the session (and what the server sent to it) instead of a new one.
                // It asks to resume that session too: a Hello of a lost link of this client may reach the server
                // after a later one, and must continue what the later one started rather than start it over.
                sessionId = stream.ProposedSessionId ??= SessionIds.New();
                features |= NativeFeatures.Propose | NativeFeatures.Resume;
                lastReceived = (ulong)stream.ResumePoint;
            }
            else if (stream.Established)
            {
                features |= NativeFeatures.Resume;
                lastReceived = (ulong)stream.ResumePoint;
            }
        }

        var session = SessionJson(Session.Snapshot);
        lock (_gate)
        {
            _outbox.Pending.Write(NativePreface.Bytes);
            NativeFrameWriter.WriteHello(_outbox.Pending, NativePreface.Version, features, sessionId, lastReceived, (uint)_options.HeartbeatInterval.TotalMilliseconds, session, _authToken, instance);
            _wroteFirst = true;
            ScheduleWriteLocked();
        }
    }

    /// <summary>Server: another client's live link holds the session this Hello presented; it keeps it, this link is refused.</summary>
    private void RefuseSessionInUse()
    {
        const string reason = "The session is in use by another client's live link.";
        Refuse(NativeCloseCodes.SessionInUse, reason, new DisconnectInfo(DisconnectReason.SessionInUse, new SessionInUseException(reason) { ConnectionId = Id }));
    }

    /// <summary>Server, native wire: the id of the client object this link comes from, when its Hello carried one.</summary>
    internal string? ClientInstance { get; private set; }

    /// <summary>Server: resume the session (and the streams, when both sides still have them) or start fresh; answer Welcome.</summary>
    private async ValueTask HandleHelloAsync(NativeFrame hello)
    {
        if (hello.Version != NativePreface.Version)
        {
            throw new ProtocolException($"Hello asks for version {hello.Version}.");
        }

        if (!await AuthenticateAsync(hello.Token).ConfigureAwait(false))
        {
            return;
        }

        var presented = ParseJson<JObject>(hello.Session, "Hello");
        CheckSessionLimits(presented);
        ClientInstance = hello.Instance;
        var claim = new Server.SessionClaim(hello.Instance, (hello.Features & NativeFeatures.Resume) != 0);
        if (hello.SessionId.Length > 0 && _server!.Sessions.HolderAgainst(hello.SessionId, claim) is { } holder)
        {
            holder.ProbeForClaim(); // a holder whose machine vanished is dropped soon, and this client's next attempt gets in
            RefuseSessionInUse(); // before the session is loaded: the store keeps the live client's keys, not this one's
            return;
        }

        Session.ApplyRemote(presented);
        var proposed = (hello.Features & NativeFeatures.Propose) != 0 && SessionIds.IsWellFormed(hello.SessionId);
        var (sessionId, stored) = await ResolveSessionAsync(hello.SessionId.Length > 0 ? hello.SessionId : null, proposed).ConfigureAwait(false);
        if (await _server!.Sessions.TryAttachAsync(sessionId, this, followsStream: true, claim).ConfigureAwait(false) is not { } attached)
        {
            await Session.DetachStoreAsync().ConfigureAwait(false); // another client's link came first meanwhile
            _server.Sessions.HolderAgainst(sessionId, claim)?.ProbeForClaim();
            RefuseSessionInUse();
            return;
        }

        _serverSession = attached;
        var stream = attached.Native;
        var granted = hello.Features & (NativeFeatures.Heartbeats | NativeFeatures.Resume | NativeFeatures.SessionOrder | NativeFeatures.Instances | (_options.EnableAcks ? NativeFeatures.Acks : 0));

        // The streams continue only when the client resumes them and this server still has them.
        bool resumeStreams, established;
        lock (stream.Gate)
        {
            established = stream.Established;
            // A proposed id is this client's alone (random, and new to the store only while its first Hellos race):
            // its streams continue even when the keys were not stored yet.
            resumeStreams = (stored || proposed) && (granted & NativeFeatures.Resume) != 0 && stream.Established
                && (long)hello.LastReceivedSeq <= stream.LastSent;
        }

        if ((hello.Features & NativeFeatures.Resume) != 0 && (established || !proposed))
        {
            Diagnostics.UhuraMetrics.StreamResumes.Add(1, resumeStreams ? Diagnostics.UhuraMetrics.Resumed : Diagnostics.UhuraMetrics.Reset);
        }

        var heartbeat = (granted & NativeFeatures.Heartbeats) != 0
            ? TimeSpan.FromMilliseconds(Math.Clamp(hello.HeartbeatIntervalMs, 100, 3_600_000))
            : TimeSpan.Zero;
        var session = SessionJson(Session.Snapshot);
        List<OutboundMessage>? lost = null;
        bool dropped;
        lock (_gate)
        {
            // A link dropped while it resolved and attached the session (superseded by a later Hello of the same client,
            // or closed) leaves the stream alone: a link that superseded it may be taking the stream at this moment,
            // and must find every held event there, not in the hands of a link that is gone. Checked under the link's
            // lock, which its end takes, so the stream is taken only by a link that has not ended.
            dropped = HasEnded;
            if (!dropped)
            {
                if (!resumeStreams)
                {
                    lost = stream.Reset();
                }

                stream.Established = true;
                var held = stream.TakeHeld(this); // after a fresh start: only sends made since, never written
                WriteWelcomeLocked(stream, sessionId, granted, resumeStreams, hello.LastReceivedSeq, heartbeat, session, held);
            }
        }

        if (lost is not null)
        {
            foreach (var message in lost)
            {
                message.Fail(new ConnectionLostException(message.Name) { ConnectionId = Id });
            }
        }

        if (dropped)
        {
            _logger.LogDebug("Connection {Id}: ended before its Welcome; session {SessionId}'s held events stay for its next link", Id, sessionId);
            _server.Sessions.Detach(sessionId, this); // it may have become the live one after its end was noted
            return;
        }

        StartHeartbeats(heartbeat);
        _ready.TrySetResult(true);
        _server.OnReady(this);
    }

    /// <summary>
    /// Server: from the moment this link is the session's live one (sends to the session may queue on it, even before
    /// its Welcome), whatever it has not delivered when it ends goes back to the session's stream for the next link.
    /// </summary>
    internal void FollowStream(NativeStream stream)
    {
        UndeliveredHandler = (messages, error) =>
        {
            if (_invalidated)
            {
                // The session is gone: nobody will resume its stream, so what this link did not deliver is lost now.
                foreach (var message in messages)
                {
                    message.Fail(new ConnectionLostException(message.Name, error) { ConnectionId = Id });
                }

                return;
            }

            foreach (var message in stream.Hold(messages, _options.MaxQueuedMessages, from: this))
            {
                message.Fail(new ConnectionLostException(message.Name, error) { ConnectionId = Id });
            }
        };
    }

    /// <summary>Server, under <c>_gate</c>: the link takes the stream, answers Welcome and writes the held events, then what was queued.</summary>
    private void WriteWelcomeLocked(NativeStream stream, string sessionId, NativeFeatures granted, bool resumeStreams, ulong clientReceived, TimeSpan heartbeat, byte[] session, List<OutboundMessage> held)
    {
        _native = stream;
        _objectMode = true;
        _acksEnabled = (granted & NativeFeatures.Acks) != 0;
        _orderedSets = (granted & NativeFeatures.SessionOrder) != 0;
        _ackedUpTo = resumeStreams ? (long)clientReceived : 0;
        _outbox.Pending.Write(NativePreface.Bytes);
        NativeFrameWriter.WriteWelcome(_outbox.Pending, NativePreface.Version, granted, sessionId, resumeStreams, resumeStreams ? (ulong)stream.ResumePoint : 0, (uint)heartbeat.TotalMilliseconds, session);
        _wroteFirst = true;
        _handshake = HandshakeProgress.Done;
        var next = 0;
        for (; next < held.Count && held[next].Seq != 0; next++)
        {
            if (held[next].Seq <= (long)clientReceived)
            {
                held[next].Succeed(); // the client had it: the resume position acknowledges it
            }
            else
            {
                WriteMessageLocked(held[next]);
            }
        }

        // Then what was never written: held with the stream or queued on this link before its Welcome, in the order sent.
        while (true)
        {
            if (next < held.Count && (!_preReady.TryPeek(out var queued) || held[next].Order <= queued.Order))
            {
                WriteMessageLocked(held[next++]);
            }
            else if (TakePreReadyLocked(out var mine))
            {
                WriteMessageLocked(mine);
            }
            else
            {
                break;
            }
        }

        ScheduleWriteLocked();
    }

    /// <summary>Client: the server's answer. Continue the streams (resend what it has not got) or start them afresh.</summary>
    private void HandleWelcome(in NativeFrame welcome)
    {
        var stream = _native!;
        if (HasEnded)
        {
            return; // dropped meanwhile (a forced reconnect): the stream and the session belong to the next link now
        }

        // The Welcome's keys (and so the session's id) are applied only once this link has taken the stream: applied
        // first, a link dropped in between (a Session subscriber may force a reconnect, a cut may land there) would
        // leave the client with a session id but a stream never established, and its next Hello would start the
        // server's streams afresh, failing what the server held for this session. Taken first, the next Hello
        // proposes (or presents) the session and resumes its streams.
        var keys = ParseJson<JObject>(welcome.Session, "Welcome");
        List<OutboundMessage> delivered = [];
        lock (_gate)
        {
            if (HasEnded)
            {
                return; // shut down since: its sends were handed back as they were, the stream untouched
            }

            _objectMode = true;
            _acksEnabled = (welcome.Features & NativeFeatures.Acks) != 0;
            _orderedSets = (welcome.Features & NativeFeatures.SessionOrder) != 0;
            if (welcome.Resumed)
            {
                lock (stream.Gate)
                {
                    if ((long)welcome.LastReceivedSeq > stream.LastSent)
                    {
                        throw new ProtocolException($"Welcome says {welcome.LastReceivedSeq} were received, but only {stream.LastSent} were sent.");
                    }
                }

                _ackedUpTo = (long)welcome.LastReceivedSeq;
            }
            else
            {
                // A fresh start: both directions begin again at 1, and what was not acknowledged is sent again as new events.
                stream.Reset();
                _ackedUpTo = 0;
            }

            lock (stream.Gate)
            {
                stream.Established = true; // the proposal stays until the keys below name the session
                stream.ServerReadsInstances = (welcome.Features & NativeFeatures.Instances) != 0;
            }

            _handshake = HandshakeProgress.Done;
            if (_setBeforeWelcome is { } changes)
            {
                _setBeforeWelcome = null;
                WriteNativeSetLocked(changes);
            }

            while (TakePreReadyLocked(out var queued))
            {
                if (!welcome.Resumed)
                {
                    queued.Seq = 0;
                }
                else if (queued.Seq != 0 && queued.Seq <= _ackedUpTo)
                {
                    delivered.Add(queued); // the server had it: the resume position acknowledges it
                    continue;
                }

                WriteMessageLocked(queued);
            }

            ScheduleWriteLocked();
        }

        Session.ApplyRemote(keys, k => KeepSettled(k, 0, welcome: true)); // keys set before the Welcome follow it, and win
        Resumed = _sentSessionId is not null && string.Equals(_sentSessionId, Session.Id, StringComparison.Ordinal);
        lock (stream.Gate)
        {
            if (Session.Id is not null)
            {
                stream.ProposedSessionId = null; // the Welcome named the session: later links present it
            }
        }

        if (delivered.Count > 0)
        {
            MarkProgress();
        }

        foreach (var message in delivered)
        {
            message.Succeed();
        }

        var interval = TimeSpan.FromMilliseconds(welcome.HeartbeatIntervalMs);
        StartHeartbeats((welcome.Features & NativeFeatures.Heartbeats) != 0 ? interval : TimeSpan.Zero);
        _ready.TrySetResult(true);
    }

    private static byte[] SessionJson(IReadOnlyDictionary<string, JToken> session)
        => Encoding.UTF8.GetBytes(Rx.Uhura.Session.SessionJson.Write(session));
}
