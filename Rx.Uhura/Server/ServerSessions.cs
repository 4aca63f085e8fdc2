using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Rx.Uhura.Internal;
using Rx.Uhura.Session;

namespace Rx.Uhura.Server;

/// <summary>
/// What a server keeps per session beyond the stored keys, across that session's connections: which messages it
/// already delivered (so a client's resends are dropped), which connection is the live one (a resuming connection
/// supersedes a half-dead predecessor), and when a disconnected session expires.
/// </summary>
internal sealed class ServerSessions(ISessionStore store, TimeSpan? timeToLive, TimeProvider timeProvider, ILogger logger)
{
    private readonly ConcurrentDictionary<string, ServerSession> _sessions = new(StringComparer.Ordinal);
    private readonly PendingTasks _pending = new();
    private readonly ISessionStreamStore? _streams = store as ISessionStreamStore;
    private readonly string _writer = Guid.NewGuid().ToString("N"); // names this server's saves of resume states
    private readonly Lock _gate = new();
    private long _saves;

    public int Count => _sessions.Count;

    /// <summary>
    /// Makes <paramref name="connection"/> the session's live connection; the previous one, if any, is dropped, and
    /// the task completes once every earlier connection of the session has fully shut down (its unacknowledged events
    /// handed to the session, the events it queued delivered), so the new connection resumes the streams from their
    /// final state and delivers nothing while an earlier one still does. With <paramref name="followsStream"/>
    /// (native protocol), what the connection has not delivered when it ends goes back to the session's stream.
    /// </summary>
    public async ValueTask<ServerSession> AttachAsync(string sessionId, Connection connection, bool followsStream = false)
        => (await TryAttachAsync(sessionId, connection, followsStream, claim: null).ConfigureAwait(false))!;

    /// <summary>Session <paramref name="sessionId"/>'s live link when it belongs to another client than <paramref name="claim"/>'s, which is refused; else null.</summary>
    public Connection? HolderAgainst(string sessionId, SessionClaim claim)
    {
        lock (_gate)
        {
            return _sessions.TryGetValue(sessionId, out var session) && claim.IsRefusedBy(session.Active) ? session.Active : null;
        }
    }

    /// <summary>As <see cref="AttachAsync"/>; with a <paramref name="claim"/>, null (nothing attached) when the session's live link belongs to another client, which keeps it.</summary>
    public async ValueTask<ServerSession?> TryAttachAsync(string sessionId, Connection connection, bool followsStream, SessionClaim? claim)
    {
        Connection? previous;
        ServerSession session;
        Task earlier;
        lock (_gate)
        {
            session = _sessions.GetOrAdd(sessionId, static (id, server) => new ServerSession(id, server), _writer);
            if (claim is { } c && c.IsRefusedBy(session.Active, connection))
            {
                logger.LogInformation("Session {SessionId}: connection {New} is refused: connection {Live} of another client holds the session", sessionId, connection.Id, session.Active!.Id);
                return null;
            }

            session.Expiry?.Dispose();
            session.Expiry = null;
            previous = session.Active;
            if (followsStream)
            {
                connection.FollowStream(session.Native); // before it is Active: sends to the session may queue on it from now
            }

            session.Active = connection;
            if (ReferenceEquals(previous, connection))
            {
                earlier = Task.CompletedTask; // attached already: it waited then
            }
            else
            {
                // A link that ended by itself is no longer Active, yet its dispatcher may still be delivering: wait for
                // it as for the one superseded here (and for those before it, which a superseded link may not have).
                earlier = session.LinksShutDown;
                session.LinksShutDown = earlier.IsCompleted ? connection.ShutdownCompleted : Task.WhenAll(earlier, connection.ShutdownCompleted);
            }
        }

        if (previous is not null && !ReferenceEquals(previous, connection))
        {
            logger.LogDebug("Session {SessionId}: connection {New} supersedes {Old}", sessionId, connection.Id, previous.Id);
            previous.Dispose(); // returns at once if it is already shutting down on another thread: waited for below
        }

        if (!earlier.IsCompleted)
        {
            logger.LogDebug("Session {SessionId}: connection {New} waits until the session's earlier connections have delivered what they received", sessionId, connection.Id);
        }

        await earlier.ConfigureAwait(false);

        if (_streams is not null)
        {
            await RestoreStreamAsync(session, connection).ConfigureAwait(false);
        }

        return session;
    }

    /// <summary>
    /// Before a link continues the session's streams: takes the resume state from the durable store. The state this
    /// session object saved is already in memory; one written by another server (or by this process before a restart)
    /// replaces what memory holds, whose events were handed over with it and fail here.
    /// </summary>
    private async ValueTask RestoreStreamAsync(ServerSession session, Connection connection)
    {
        Task saving;
        lock (session.SaveGate)
        {
            saving = session.Saving;
        }

        await saving.ConfigureAwait(false); // a save of the previous link's state lands before it is taken back
        SessionStreamState? state;
        try
        {
            state = await _streams!.TakeStreamAsync(session.Id).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            logger.LogError(ex, "Session {SessionId}: loading its resume state failed; continuing with what this server holds", session.Id);
            return;
        }

        // A state this session object saved is one its memory holds, or an older one (every save is a snapshot of it).
        // No marker to clear: two lookups racing a save (a link ending before its Welcome as the next one attaches)
        // once made the second restore this server's own save, failing the held sends its copies then delivered.
        if (state is null || state.Writer.StartsWith(session.SaveTag, StringComparison.Ordinal))
        {
            return;
        }

        var replaced = session.Native.Restore(state, out var unreadable);
        foreach (var message in replaced)
        {
            message.Fail(new ConnectionLostException(message.Name) { ConnectionId = connection.Id });
        }

        if (unreadable > 0)
        {
            logger.LogError("Session {SessionId}: {Count} stored events could not be read back and are dropped", session.Id, unreadable);
        }

        logger.LogDebug("Session {SessionId}: resume state restored ({Held} events held, {Sent} sent, {Received} received)", session.Id, state.Held.Count - unreadable, state.LastSent, state.LastReceived);
    }

    /// <summary>
    /// The session's resume state changed while no link is live (the link ended, or a send is waiting for the client):
    /// save it to the durable store, one save at a time per session, the latest state winning.
    /// </summary>
    public void StreamChanged(ServerSession session)
    {
        if (_streams is null)
        {
            return;
        }

        lock (session.SaveGate)
        {
            session.SaveWanted = true;
            if (!session.SaveRunning)
            {
                session.SaveRunning = true;
                session.Saving = Track(Task.Run(() => SaveStreamLoopAsync(session)));
            }
        }
    }

    private async Task SaveStreamLoopAsync(ServerSession session)
    {
        while (true)
        {
            lock (session.SaveGate)
            {
                if (!session.SaveWanted || session.Active is not null || !_sessions.TryGetValue(session.Id, out var current) || !ReferenceEquals(current, session))
                {
                    session.SaveWanted = false;
                    session.SaveRunning = false;
                    return; // nothing new, a live link owns the streams again, or the session ended
                }

                session.SaveWanted = false;
            }

            var writer = session.SaveTag + Interlocked.Increment(ref _saves).ToString(System.Globalization.CultureInfo.InvariantCulture);
            if (session.Native.Snapshot(writer) is not { } state)
            {
                continue;
            }

            try
            {
                await _streams!.SaveStreamAsync(session.Id, state).ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                logger.LogError(ex, "Session {SessionId}: saving its resume state failed", session.Id);
            }
        }
    }

    /// <summary>Completes when every save started so far (resume states, and sessions saved at disconnection) has finished.</summary>
    public Task FlushAsync() => _pending.WhenAllAsync();

    /// <summary>Remembers <paramref name="task"/> until it ends, for <see cref="FlushAsync"/>.</summary>
    private Task Track(Task task) => _pending.Track(task);

    /// <summary>The connection ended: if it was the live one, the session waits <c>timeToLive</c> for a resume, then expires.</summary>
    public void Detach(string sessionId, Connection connection)
    {
        ServerSession? session;
        lock (_gate)
        {
            if (!_sessions.TryGetValue(sessionId, out session) || !ReferenceEquals(session.Active, connection))
            {
                return;
            }

            session.Active = null;
            if (timeToLive is { } ttl)
            {
                session.Expiry = new SessionExpiry(timeProvider, ttl, expiry => Expire(session, expiry));
                session.Expiry.Start();
            }
        }

        // Saved again at the disconnection, so a store's own time to live counts from now, not from the last change.
        connection.Session.SaveAgain();
        session.KeysSaved = Track(connection.Session.FlushAsync());
        if (session.Native.Established)
        {
            StreamChanged(session); // native streams only: the other wires have no resume state
        }
    }

    /// <summary>
    /// Completes when the keys of session <paramref name="sessionId"/>, if its last link on this server ended, are in the
    /// store: a client resuming at once then finds what that link saved, however far behind the saves run.
    /// </summary>
    public Task WhenSavedAsync(string sessionId)
        => _sessions.TryGetValue(sessionId, out var session) ? session.KeysSaved : Task.CompletedTask;

    /// <summary>Forgets a session at once (invalidation).</summary>
    public void Remove(string sessionId)
    {
        lock (_gate)
        {
            if (_sessions.TryRemove(sessionId, out var session))
            {
                session.Expiry?.Dispose();
            }
        }
    }

    /// <summary>
    /// The server closed: the sends still held for sessions (their clients did not come back to take them) fail with
    /// <see cref="ConnectionLostException"/>, so that no task of this server waits for good. What was saved of each
    /// session's stream stays in the store: a server that resumes the session sends them from there.
    /// </summary>
    public void FailHeld()
    {
        foreach (var session in _sessions.Values)
        {
            foreach (var held in session.Native.TakeHeldForClose())
            {
                held.Fail(new ConnectionLostException(held.Name) { ConnectionId = null });
            }
        }
    }

    private void Expire(ServerSession session, SessionExpiry expiry)
    {
        lock (_gate)
        {
            if (session.Active is not null || !ReferenceEquals(session.Expiry, expiry) || !_sessions.TryGetValue(session.Id, out var current) || !ReferenceEquals(current, session))
            {
                return; // resumed since (or detached again: a newer expiry counts)
            }

            _sessions.TryRemove(session.Id, out _);
            session.Expiry?.Dispose();
        }

        logger.LogDebug("Session {SessionId} expired", session.Id);
        foreach (var held in session.Native.Reset())
        {
            held.Fail(new ConnectionLostException(held.Name) { ConnectionId = null });
        }

        if (store is not IExpiringSessionStore { TimeToLive: not null })
        {
            _ = DestroyAsync(session.Id); // a store that expires sessions itself keeps them: another server may hold the client now
        }
    }

    private async Task DestroyAsync(string sessionId)
    {
        try
        {
            await store.DestroyAsync(sessionId).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            logger.LogError(ex, "Destroying expired session {SessionId} failed", sessionId);
        }
    }
}

/// <summary>One session's server-side state. Delivery decisions are taken under <see cref="Gate"/>.</summary>
internal sealed class ServerSession(string id, string server)
{
    private const int RecentIdLimit = 4096;
    private readonly HashSet<string> _recent = new(StringComparer.Ordinal);
    private readonly Queue<string> _recentOrder = new();
    private string? _prefix;
    private long _lastSeq;

    public string Id { get; } = id;

    public Lock Gate { get; } = new();

    public Connection? Active { get; set; }

    /// <summary>
    /// Completes once every connection attached to this session so far has shut down and delivered what it queued
    /// (<see cref="Connection.ShutdownCompleted"/>); set under the sessions' lock.
    /// </summary>
    public Task LinksShutDown { get; set; } = Task.CompletedTask;

    /// <summary>The native protocol's streams of this session, which outlive its connections.</summary>
    public NativeStream Native { get; } = new();

    public SessionExpiry? Expiry { get; set; }

    /// <summary>The saving of the keys as the last link ended (a completed task while a link is live).</summary>
    public Task KeysSaved { get; set; } = Task.CompletedTask;

    /// <summary>Guards the durable saves of <see cref="Native"/> below.</summary>
    public Lock SaveGate { get; } = new();

    /// <summary>The save loop of the resume state, or a completed task.</summary>
    public Task Saving { get; set; } = Task.CompletedTask;

    /// <summary>Whether a save loop runs (it exits under <see cref="SaveGate"/>, before its task completes).</summary>
    public bool SaveRunning { get; set; }

    /// <summary>Whether the resume state changed since the running save read it.</summary>
    public bool SaveWanted { get; set; }

    /// <summary>What the writer token of each of this session object's saves starts with (the server's, then its own).</summary>
    public string SaveTag { get; } = server + ":" + Guid.NewGuid().ToString("N") + ":";

    /// <summary>
    /// True the first time a message id is seen. Rx.Uhura ids (<c>rx…:SEQ</c>) arrive in rising order per sender, so a
    /// watermark suffices; other ids (Node's uuids) are remembered in a bounded window of the most recent ones.
    /// Call under <see cref="Gate"/>.
    /// </summary>
    public bool ShouldDeliver(string messageId)
    {
        if (MessageIds.TrySplit(messageId, out var prefix, out var seq))
        {
            if (_prefix is null || !prefix.SequenceEqual(_prefix))
            {
                _prefix = prefix.ToString(); // a new sender (a new client instance resuming the session)
                _lastSeq = seq;
                return true;
            }

            if (seq <= _lastSeq)
            {
                return false;
            }

            _lastSeq = seq;
            return true;
        }

        if (!_recent.Add(messageId))
        {
            return false;
        }

        _recentOrder.Enqueue(messageId);
        if (_recentOrder.Count > RecentIdLimit)
        {
            _recent.Remove(_recentOrder.Dequeue());
        }

        return true;
    }
}
