using System.Collections.Immutable;

namespace Rx.Uhura.Session;

/// <summary>
/// A hot stream of the session whose subscribers are called outside the session's gate, each from a queue of its own
/// (a subscriber that is slow or blocks delays only itself). Values are queued under the owner's gate, in the order the
/// changes were applied; each subscriber's queue is drained by one thread at a time (a thread-pool work item, or the
/// subscribing thread for what it finds at subscription). With <c>latestOnly</c> (the contents stream) a queue keeps
/// the newest value instead of piling up states; otherwise (the changes stream) it holds at most
/// <paramref name="bound"/> values and reports an overflow once when it drops.
/// </summary>
internal sealed class SessionFanout<T>(Lock gate, bool latestOnly, int bound, Action<SubscriberOverflowException> overflow)
{
    private ImmutableArray<Sink> _sinks = [];
    private bool _completed;

    /// <summary>Under the owner's gate: every subscriber will get <paramref name="value"/>, after what it was queued before.</summary>
    public void OnNextLocked(T value)
    {
        foreach (var sink in _sinks)
        {
            sink.EnqueueLocked(new Item(value, false));
        }
    }

    /// <summary>Under the owner's gate: every subscriber completes after what it was queued before; later ones complete at once.</summary>
    public void OnCompletedLocked()
    {
        if (_completed)
        {
            return;
        }

        _completed = true;
        foreach (var sink in _sinks)
        {
            sink.EnqueueLocked(new Item(default!, true));
        }

        _sinks = [];
    }

    /// <summary>
    /// Subscribes <paramref name="observer"/> (already guarded). <paramref name="initial"/>, read under the gate, is its
    /// first value (the contents stream replays the current contents); it is delivered on the calling thread before
    /// Subscribe returns, with whatever changed meanwhile, then later values come from the thread pool.
    /// </summary>
    public IDisposable Subscribe(IObserver<T> observer, Func<T>? initial)
    {
        var sink = new Sink(this, gate, observer);
        lock (gate)
        {
            sink.Draining = true; // this thread drains what is queued now
            if (_completed)
            {
                sink.Queue.Enqueue(new Item(default!, true));
            }
            else
            {
                if (initial is not null)
                {
                    sink.Queue.Enqueue(new Item(initial(), false));
                }

                _sinks = _sinks.Add(sink);
            }
        }

        sink.Drain();
        return sink;
    }

    private readonly record struct Item(T Value, bool End);

    private sealed class Sink(SessionFanout<T> owner, Lock gate, IObserver<T> observer) : IDisposable
    {
        public readonly Queue<Item> Queue = new();
        public bool Draining;
        private bool _disposed;
        private bool _overflowing;

        /// <summary>Under the gate: queues the item and makes sure a drain will run.</summary>
        public void EnqueueLocked(Item item)
        {
            if (_disposed)
            {
                return;
            }

            if (!item.End && Queue.Count > 0)
            {
                if (owner.LatestOnly)
                {
                    Queue.Clear(); // contents not taken yet: the newer ones replace them
                }
                else if (Queue.Count >= owner.Bound)
                {
                    if (!_overflowing)
                    {
                        _overflowing = true;
                        owner.Overflow(new SubscriberOverflowException($"A session subscriber fell {owner.Bound} changes behind: newer changes are dropped for it until it catches up.", null, SubscriberOverflowPolicy.DropNewest));
                    }

                    return;
                }
            }

            Queue.Enqueue(item);
            if (!Draining)
            {
                Draining = true;
                ThreadPool.UnsafeQueueUserWorkItem(static sink => sink.Drain(), this, preferLocal: false);
            }
        }

        /// <summary>Delivers the queue in order until it is empty (called by the one thread that set <see cref="Draining"/>).</summary>
        public void Drain()
        {
            while (true)
            {
                Item item;
                lock (gate)
                {
                    if (_disposed || !Queue.TryDequeue(out item))
                    {
                        Draining = false;
                        _overflowing = false;
                        return;
                    }
                }

                if (item.End)
                {
                    observer.OnCompleted();
                }
                else
                {
                    observer.OnNext(item.Value);
                }
            }
        }

        public void Dispose()
        {
            lock (gate)
            {
                _disposed = true;
                Queue.Clear();
                owner._sinks = owner._sinks.Remove(this);
            }
        }
    }

    private bool LatestOnly => latestOnly;

    private int Bound => bound;

    /// <summary>Reports off the gate (the report reaches the application's error subscribers).</summary>
    private void Overflow(SubscriberOverflowException error)
        => ThreadPool.UnsafeQueueUserWorkItem(static state => state.Report(state.Error), (Report: overflow, Error: error), preferLocal: false);
}
