using System.Collections.Immutable;
using System.Reactive.Linq;
using Microsoft.Extensions.Logging;
using Newtonsoft.Json;
using Newtonsoft.Json.Linq;
using Rx.Uhura.Protocol;

namespace Rx.Uhura.Session;

/// <summary>
/// The key/value store shared by the two ends of a link (uhura's <c>set</c>/<c>get</c>). Changes made on either side
/// are applied locally at once and sent to the other. Subscribing yields the current contents first, then every new
/// snapshot; <see cref="Changes"/> yields the individual key changes. On a client the session outlives any one
/// socket and is resumed by <see cref="Id"/> after a reconnect.
/// <para>
/// <see cref="Get()"/> reflects a change at once. Subscribers are called outside every lock of the library, each from a
/// queue of its own, in the order the changes were applied: a subscriber that is slow or blocks delays only itself,
/// never the link's reading (events, acks, heartbeats), another subscriber, or another thread's
/// <see cref="Set(string, object?)"/>. Subscribing delivers the current contents at once, on the subscribing thread;
/// later notifications come from a thread-pool thread (one at a time per subscriber; one that calls
/// <see cref="Set(string, object?)"/> hears of that change after it returns). A contents subscriber that is behind
/// skips to the newest contents; a <see cref="Changes"/> subscriber gets every change, up to 10,000 behind, beyond
/// which newer changes are dropped for it and a <see cref="SubscriberException"/> wrapping a
/// <see cref="SubscriberOverflowException"/> is reported on the owner's error stream.
/// </para>
/// </summary>
public sealed partial class UhuraSession : IObservable<IReadOnlyDictionary<string, JToken>>
{
    /// <summary>The key that holds the session id, as in Node uhura.</summary>
    public const string IdKey = "sessionID";

    /// <summary>The most changes a <see cref="Changes"/> subscriber may fall behind before newer ones are dropped for it (reported).</summary>
    internal const int MaxPendingChanges = 10_000;

    private readonly Lock _gate = new();

    // The contents, changed under _gate. Subscribers hear of each change from a queue of their own, in order, outside
    // every lock: a slow or blocking subscriber delays only itself, never a link's reading or another thread's Set.
    private ImmutableDictionary<string, JToken> _current = ImmutableDictionary.Create<string, JToken>(StringComparer.Ordinal);
    private readonly SessionFanout<ImmutableDictionary<string, JToken>> _state;
    private readonly SessionFanout<SessionChange> _changes;
    private readonly JsonSerializer _serializer;
    private ISessionSink? _sink;
    private Persister? _persister;

    internal UhuraSession(JsonSerializer serializer)
    {
        _serializer = serializer;
        _state = new(_gate, latestOnly: true, 0, _ => { });
        _changes = new(_gate, latestOnly: false, MaxPendingChanges, overflow => Report(new SubscriberException("UhuraSession.Changes", null, overflow)));
    }

    /// <summary>The session id, once the server assigned one; <see langword="null"/> before the first handshake and after invalidation.</summary>
    public string? Id => Get(IdKey) is JValue { Type: JTokenType.String } v ? (string?)v : null;

    /// <summary>
    /// The individual key changes, local and remote, in the order they were applied. A subscriber that throws is reported
    /// on the owner's error stream (<see cref="UhuraClient.Errors"/> or <see cref="UhuraServer.Errors"/>) as a
    /// <see cref="SubscriberException"/>: the change is applied and sent all the same, and the link goes on.
    /// </summary>
    public IObservable<SessionChange> Changes => new Internal.PlainObservable<SessionChange>(
        observer => _changes.Subscribe(new Internal.GuardedObserver<SessionChange>(observer, "UhuraSession.Changes", static c => c.Key, Report), initial: null));

    /// <summary>The whole session now (an immutable snapshot; uhura's <c>get()</c>).</summary>
    public IReadOnlyDictionary<string, JToken> Get() => Volatile.Read(ref _current);

    /// <summary>One value, or <see langword="null"/> when the key is not set (uhura's <c>get(key)</c>).</summary>
    public JToken? Get(string key) => Volatile.Read(ref _current).TryGetValue(key, out var value) ? value : null;

    /// <summary>One value converted to <typeparamref name="T"/>, or <c>default</c> when the key is not set.</summary>
    public T? Get<T>(string key) => Get(key) is { } token ? token.ToObject<T>(_serializer) : default;

    /// <summary>
    /// Sets a key here and on the peer (uhura's <c>set(key, val)</c>). A <see langword="null"/> value is stored as JSON
    /// null. A change the peer could not accept is refused here, before anything is applied or sent.
    /// </summary>
    /// <exception cref="EncodeException">The value cannot be serialized, or not as strict JSON within
    /// <see cref="ConnectionOptions.MaxJsonDepth"/> (less the two levels the wire adds); its <c>EventName</c> is <c>_set</c>.</exception>
    /// <exception cref="FrameTooLargeException">The change, or the session with it, would not fit in one message
    /// (<see cref="ConnectionOptions.MaxMessageSize"/>).</exception>
    /// <exception cref="SessionLimitException">The session would exceed <see cref="ConnectionOptions.MaxSessionKeys"/> or
    /// <see cref="ConnectionOptions.MaxSessionBytes"/>.</exception>
    /// <exception cref="ArgumentException"><paramref name="key"/> is <see cref="IdKey"/>: the session's id cannot be set.</exception>
    public void Set(string key, object? value)
    {
        ArgumentNullException.ThrowIfNull(key);
        ThrowIfId(key);
        var token = Encode(key, value, out var size);
        (string, long)[] change = [(key, size)];
        lock (_gate)
        {
            CheckLimitsLocked(change);

            // Sent under the same gate it was applied under: two threads' changes of one key reach the peer in the order
            // they were applied here, so both sides end with the same value.
            Apply(key, token, SessionChangeOrigin.Local);
            NoteSizesLocked(change);
            _sink?.SendSet(key, token);
        }
    }

    /// <summary>Sets several keys at once (uhura's <c>set({k: v, ...})</c>), sent as one message; all or none of them.</summary>
    /// <exception cref="EncodeException">A value cannot be encoded (see <see cref="Set(string, object?)"/>).</exception>
    /// <exception cref="FrameTooLargeException">The changes, or the session with them, would not fit in one message.</exception>
    /// <exception cref="SessionLimitException">The session would exceed its limits.</exception>
    /// <exception cref="ArgumentException">One of the keys is <see cref="IdKey"/>: the session's id cannot be set.</exception>
    public void Set(IEnumerable<KeyValuePair<string, object?>> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        var obj = new JObject();
        var sizes = new Dictionary<string, long>(StringComparer.Ordinal); // a key given twice counts once, as its last value
        foreach (var (key, value) in values)
        {
            ThrowIfId(key);
            obj[key] = Encode(key, value, out var size);
            sizes[key] = size;
        }

        List<(string, long)> changes = [.. sizes.Select(p => (p.Key, p.Value))];
        var total = sizes.Values.Sum();

        if (total + (SetOverhead * (long)changes.Count) > Limits.MaxMessageSize)
        {
            throw new FrameTooLargeException(Limits.MaxMessageSize, $"The {changes.Count} session changes are {total} bytes: their Set message would exceed the maximum size of {Limits.MaxMessageSize} bytes.");
        }

        lock (_gate)
        {
            CheckLimitsLocked(changes);
            foreach (var property in obj.Properties())
            {
                Apply(property.Name, property.Value, SessionChangeOrigin.Local);
            }

            NoteSizesLocked(changes);
            _sink?.SendSetMany(obj);
        }
    }

    /// <summary>
    /// Subscribes to the whole session: its contents now, then after every change. A subscriber that throws is reported
    /// as for <see cref="Changes"/>; nothing else is affected.
    /// </summary>
    public IDisposable Subscribe(IObserver<IReadOnlyDictionary<string, JToken>> observer)
    {
        ArgumentNullException.ThrowIfNull(observer);
        return _state.Subscribe(new Internal.GuardedObserver<ImmutableDictionary<string, JToken>>(observer, "UhuraSession", null, Report), () => _current);
    }

    /// <summary>Where a throwing subscriber is reported (set by the session's owner: a client or a server connection).</summary>
    internal Action<SubscriberException>? ErrorSink { get; set; }

    private void Report(SubscriberException error) => ErrorSink?.Invoke(error);

    internal ImmutableDictionary<string, JToken> Snapshot => Volatile.Read(ref _current);

    internal void AttachSink(ISessionSink sink)
    {
        lock (_gate)
        {
            _sink = sink;
        }
    }

    internal void DetachSink(ISessionSink sink)
    {
        lock (_gate)
        {
            if (ReferenceEquals(_sink, sink))
            {
                _sink = null;
            }
        }
    }

    internal void ApplyRemote(string key, JToken? value)
    {
        lock (_gate)
        {
            Apply(key, value, SessionChangeOrigin.Remote);
        }
    }

    /// <summary>Applies the peer's change of one key if <paramref name="keepUnderGate"/>, asked under the session's gate, keeps it.</summary>
    internal void ApplyRemote(string key, JToken? value, Func<string, bool> keepUnderGate)
    {
        lock (_gate)
        {
            if (keepUnderGate(key))
            {
                Apply(key, value, SessionChangeOrigin.Remote);
            }
        }
    }

    internal void ApplyRemote(JObject values) => ApplyRemote(values, static values => values);

    /// <summary>
    /// Applies the peer's changes that <paramref name="underGate"/> keeps. It runs under the session's gate, the one local
    /// changes are applied and sent under, so what it decides (which keys a change of this side has superseded, or how
    /// many of the peer's changes were applied) is exact with respect to them.
    /// </summary>
    internal void ApplyRemote(JObject values, Func<JObject, JObject> underGate)
    {
        lock (_gate)
        {
            values = underGate(values);
            foreach (var property in values.Properties())
            {
                Apply(property.Name, property.Value, SessionChangeOrigin.Remote);
            }
        }
    }

    /// <summary>Replaces the whole contents (session resume / invalidation), reporting each key that changed.</summary>
    internal void Replace(IReadOnlyDictionary<string, JToken> contents, SessionChangeOrigin origin)
    {
        lock (_gate)
        {
            var before = _current;
            var after = ImmutableDictionary.CreateRange(StringComparer.Ordinal, contents);
            Volatile.Write(ref _current, after);
            _sizes = null;
            _persister?.MarkDirty(after);
            _state.OnNextLocked(after);
            foreach (var (key, value) in after)
            {
                if (!before.TryGetValue(key, out var old) || !JToken.DeepEquals(old, value))
                {
                    _changes.OnNextLocked(new SessionChange(key, value, origin));
                }
            }

            foreach (var key in before.Keys)
            {
                if (!after.ContainsKey(key))
                {
                    _changes.OnNextLocked(new SessionChange(key, null, origin));
                }
            }
        }
    }

    internal void AttachStore(ISessionStore store, string sessionId, ILogger logger)
    {
        lock (_gate)
        {
            _persister = new Persister(store, sessionId, logger);
            _persister.MarkDirty(_current);
        }
    }

    /// <summary>Stops saving (after invalidation) and returns when the last save finished.</summary>
    internal Task DetachStoreAsync()
    {
        Persister? persister;
        lock (_gate)
        {
            persister = _persister;
            _persister = null;
        }

        return persister?.WhenIdleAsync() ?? Task.CompletedTask;
    }

    /// <summary>Saves the current state once more (server side, at a disconnection); nothing when no store is attached.</summary>
    internal void SaveAgain()
    {
        lock (_gate)
        {
            _persister?.MarkDirty(_current);
        }
    }

    /// <summary>Returns when every change so far has been saved.</summary>
    internal Task FlushAsync()
    {
        Persister? persister;
        lock (_gate)
        {
            persister = _persister;
        }

        return persister?.WhenIdleAsync() ?? Task.CompletedTask;
    }

    /// <summary>The owner is gone (a client disposed, a server link ended): both streams complete, after any change in progress.</summary>
    internal void Complete()
    {
        lock (_gate)
        {
            _changes.OnCompletedLocked(); // each subscriber after the changes queued for it
            _state.OnCompletedLocked();
        }
    }

    private void Apply(string key, JToken? value, SessionChangeOrigin origin)
    {
        var before = _current;
        var after = value is null ? before.Remove(key) : before.SetItem(key, value);
        if (ReferenceEquals(before, after))
        {
            return;
        }

        Volatile.Write(ref _current, after);
        if (origin != SessionChangeOrigin.Local)
        {
            _sizes = null; // counted again at the next local change
        }

        _persister?.MarkDirty(after);
        _state.OnNextLocked(after);
        _changes.OnNextLocked(new SessionChange(key, value, origin));
    }

    private sealed class Persister(ISessionStore store, string sessionId, ILogger logger)
    {
        private readonly Lock _gate = new();
        private IReadOnlyDictionary<string, JToken>? _next;
        private Task _running = Task.CompletedTask;
        private bool _active;

        public void MarkDirty(IReadOnlyDictionary<string, JToken> snapshot)
        {
            lock (_gate)
            {
                _next = snapshot;
                if (!_active)
                {
                    _active = true;
                    _running = Task.Run(SaveLoopAsync);
                }
            }
        }

        public Task WhenIdleAsync()
        {
            lock (_gate)
            {
                return _running;
            }
        }

        private async Task SaveLoopAsync()
        {
            while (true)
            {
                IReadOnlyDictionary<string, JToken> snapshot;
                lock (_gate)
                {
                    if (_next is null)
                    {
                        _active = false;
                        return;
                    }

                    snapshot = _next;
                    _next = null;
                }

                try
                {
                    await store.SetAsync(sessionId, snapshot).ConfigureAwait(false);
                }
                catch (Exception ex)
                {
                    logger.LogError(ex, "Saving session {SessionId} failed", sessionId);
                }
            }
        }
    }
}

/// <summary>
/// Where a session sends its local changes: the live link, if any. Called under the session's gate (changes leave in the
/// order they were applied), so an implementation takes no lock that is ever held while calling into the session.
/// </summary>
internal interface ISessionSink
{
    void SendSet(string key, JToken value);

    void SendSetMany(JObject values);
}
