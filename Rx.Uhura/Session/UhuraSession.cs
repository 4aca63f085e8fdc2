using System.Collections.Immutable;
using System.Reactive.Linq;
using System.Reactive.Subjects;
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
/// </summary>
public sealed class UhuraSession : IObservable<IReadOnlyDictionary<string, JToken>>
{
    /// <summary>The key that holds the session id, as in Node uhura.</summary>
    public const string IdKey = "sessionID";

    private readonly Lock _gate = new();
    private readonly BehaviorSubject<ImmutableDictionary<string, JToken>> _state = new(ImmutableDictionary.Create<string, JToken>(StringComparer.Ordinal));
    private readonly Subject<SessionChange> _changes = new();
    private readonly JsonSerializer _serializer;
    private ISessionSink? _sink;
    private Persister? _persister;

    internal UhuraSession(JsonSerializer serializer)
    {
        _serializer = serializer;
    }

    /// <summary>The session id, once the server assigned one; <see langword="null"/> before the first handshake and after invalidation.</summary>
    public string? Id => Get(IdKey) is JValue { Type: JTokenType.String } v ? (string?)v : null;

    /// <summary>
    /// The individual key changes, local and remote, in the order they were applied. A subscriber that throws is reported
    /// on the owner's error stream (<see cref="UhuraClient.Errors"/> or <see cref="UhuraServer.Errors"/>) as a
    /// <see cref="SubscriberException"/>: the change is applied and sent all the same, and the link goes on.
    /// </summary>
    public IObservable<SessionChange> Changes => new Internal.GuardedObservable<SessionChange>(_changes, "UhuraSession.Changes", static c => c.Key, Report);

    /// <summary>The whole session now (an immutable snapshot; uhura's <c>get()</c>).</summary>
    public IReadOnlyDictionary<string, JToken> Get() => _state.Value;

    /// <summary>One value, or <see langword="null"/> when the key is not set (uhura's <c>get(key)</c>).</summary>
    public JToken? Get(string key) => _state.Value.TryGetValue(key, out var value) ? value : null;

    /// <summary>One value converted to <typeparamref name="T"/>, or <c>default</c> when the key is not set.</summary>
    public T? Get<T>(string key) => Get(key) is { } token ? token.ToObject<T>(_serializer) : default;

    /// <summary>Sets a key here and on the peer (uhura's <c>set(key, val)</c>). A <see langword="null"/> value is stored as JSON null.</summary>
    public void Set(string key, object? value)
    {
        ArgumentNullException.ThrowIfNull(key);
        var token = NodeWireCodec.ToToken(value, _serializer);
        lock (_gate)
        {
            // Sent under the same gate it was applied under: two threads' changes of one key reach the peer in the order
            // they were applied here, so both sides end with the same value.
            Apply(key, token, SessionChangeOrigin.Local);
            _sink?.SendSet(key, token);
        }
    }

    /// <summary>Sets several keys at once (uhura's <c>set({k: v, ...})</c>), sent as one message.</summary>
    public void Set(IEnumerable<KeyValuePair<string, object?>> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        var obj = new JObject();
        foreach (var (key, value) in values)
        {
            obj[key] = NodeWireCodec.ToToken(value, _serializer);
        }

        lock (_gate)
        {
            foreach (var property in obj.Properties())
            {
                Apply(property.Name, property.Value, SessionChangeOrigin.Local);
            }

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
        return _state.Subscribe(new Internal.GuardedObserver<IReadOnlyDictionary<string, JToken>>(observer, "UhuraSession", null, Report));
    }

    /// <summary>Where a throwing subscriber is reported (set by the session's owner: a client or a server connection).</summary>
    internal Action<SubscriberException>? ErrorSink { get; set; }

    private void Report(SubscriberException error) => ErrorSink?.Invoke(error);

    internal ImmutableDictionary<string, JToken> Snapshot => _state.Value;

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
            var before = _state.Value;
            var after = ImmutableDictionary.CreateRange(StringComparer.Ordinal, contents);
            _state.OnNext(after);
            _persister?.MarkDirty(after);
            foreach (var (key, value) in after)
            {
                if (!before.TryGetValue(key, out var old) || !JToken.DeepEquals(old, value))
                {
                    _changes.OnNext(new SessionChange(key, value, origin));
                }
            }

            foreach (var key in before.Keys)
            {
                if (!after.ContainsKey(key))
                {
                    _changes.OnNext(new SessionChange(key, null, origin));
                }
            }
        }
    }

    /// <summary>From now on every change is saved to <paramref name="store"/> under <paramref name="sessionId"/> (server side).</summary>
    internal void AttachStore(ISessionStore store, string sessionId, ILogger logger)
    {
        lock (_gate)
        {
            _persister = new Persister(store, sessionId, logger);
            _persister.MarkDirty(_state.Value);
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
            _persister?.MarkDirty(_state.Value);
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
            _changes.OnCompleted();
            _state.OnCompleted();
        }
    }

    private void Apply(string key, JToken? value, SessionChangeOrigin origin)
    {
        var before = _state.Value;
        var after = value is null ? before.Remove(key) : before.SetItem(key, value);
        if (ReferenceEquals(before, after))
        {
            return;
        }

        _state.OnNext(after);
        _persister?.MarkDirty(after);
        _changes.OnNext(new SessionChange(key, value, origin));
    }

    /// <summary>Saves snapshots one at a time, coalescing the changes made while a save runs (last one wins).</summary>
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
