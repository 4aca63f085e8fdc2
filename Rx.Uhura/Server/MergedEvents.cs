using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Rx.Uhura.Internal;

namespace Rx.Uhura.Server;

/// <summary>
/// The server's merged stream of events (<see cref="UhuraServer.Events"/>): each subscriber has its own bounded FIFO
/// queue drained by its own pump, so a slow subscriber delays nobody but itself (until its queue is full, then by
/// <see cref="SubscriberOverflowPolicy"/>). Links' dispatchers publish; an event is acknowledged once every subscriber
/// present when it was published got it (a countdown per event), which keeps acks in order since every queue is FIFO.
/// </summary>
internal sealed class MergedEvents : IObservable<UhuraEvent>
{
    private const string StreamName = "UhuraServer.Events";

    private readonly int _capacity;
    private readonly SubscriberOverflowPolicy _policy;
    private readonly Action<UhuraException> _report;
    private readonly ILogger _logger;
    private readonly Lock _gate = new();
    private Subscriber[] _subscribers = []; // copy on write, under _gate
    private bool _completed;

    public MergedEvents(int capacity, SubscriberOverflowPolicy policy, Action<UhuraException> report, ILogger logger)
    {
        _capacity = capacity;
        _policy = policy;
        _report = report;
        _logger = logger;
    }

    public bool HasSubscribers => Volatile.Read(ref _subscribers).Length != 0;

    public IDisposable Subscribe(IObserver<UhuraEvent> observer) => Subscribe(observer, null);

    /// <summary>The events named <paramref name="eventName"/> only: the filter is the subscriber's own, so a throwing observer keeps it.</summary>
    public IObservable<UhuraEvent> Named(string eventName) => new PlainObservable<UhuraEvent>(observer => Subscribe(observer, eventName));

    private IDisposable Subscribe(IObserver<UhuraEvent> observer, string? eventName)
    {
        ArgumentNullException.ThrowIfNull(observer);
        var subscriber = new Subscriber(this, observer, eventName);
        lock (_gate)
        {
            if (!_completed)
            {
                _subscribers = [.. _subscribers, subscriber];
                subscriber.Start();
                return subscriber;
            }
        }

        subscriber.Start();
        subscriber.Complete(); // after the server closed: completion at once
        return subscriber;
    }

    /// <summary>Completes every subscriber after what is queued for it; later subscribers complete at once.</summary>
    public void Complete()
    {
        Subscriber[] subscribers;
        lock (_gate)
        {
            _completed = true;
            subscribers = _subscribers;
            _subscribers = [];
        }

        foreach (var subscriber in subscribers)
        {
            subscriber.Complete();
        }
    }

    /// <summary>
    /// Queues <paramref name="delivery"/>'s event, from <paramref name="link"/>, for every subscriber; its acknowledgement
    /// is sent by the last one to take it (at once when there is none). Waits only when a subscriber's queue is full under
    /// <see cref="SubscriberOverflowPolicy.Wait"/>.
    /// </summary>
    public ValueTask PublishAsync(Connection link, Delivery delivery)
    {
        var subscribers = Volatile.Read(ref _subscribers);
        var countdown = link.NewAckCountdown(delivery, subscribers.Length);
        for (var i = 0; i < subscribers.Length; i++)
        {
            var subscriber = subscribers[i];
            if (!subscriber.Wants(delivery.Event!))
            {
                countdown.Signal(); // not its event: taken for it at once
                continue;
            }

            if (subscriber.TryWrite(delivery.Event!, countdown))
            {
                continue;
            }

            if (subscriber.IsClosed)
            {
                countdown.Signal();
                continue;
            }

            switch (_policy)
            {
                case SubscriberOverflowPolicy.Wait:
                    return PublishSlowAsync(subscribers, i, delivery.Event!, countdown);
                case SubscriberOverflowPolicy.DropNewest:
                    countdown.Signal();
                    Report(new SubscriberOverflowException($"A subscriber of {StreamName} has {_capacity} events queued; event '{delivery.Event!.Name}' was dropped for it.", delivery.Event!.Name, _policy) { ConnectionId = link.Id });
                    break;
                default:
                    countdown.Signal();
                    var error = new SubscriberOverflowException($"A subscriber of {StreamName} has {_capacity} events queued; its subscription fails.", delivery.Event!.Name, _policy) { ConnectionId = link.Id };
                    Remove(subscriber);
                    subscriber.Fail(error);
                    Report(error);
                    break;
            }
        }

        countdown.Signal();
        return ValueTask.CompletedTask;
    }

    private async ValueTask PublishSlowAsync(Subscriber[] subscribers, int from, UhuraEvent e, AckCountdown countdown)
    {
        for (var i = from; i < subscribers.Length; i++)
        {
            if (!subscribers[i].Wants(e) || !await subscribers[i].WriteAsync(e, countdown).ConfigureAwait(false))
            {
                countdown.Signal(); // it unsubscribed or ended meanwhile
            }
        }

        countdown.Signal();
    }

    private void Remove(Subscriber subscriber)
    {
        lock (_gate)
        {
            _subscribers = Array.FindAll(_subscribers, s => !ReferenceEquals(s, subscriber));
        }
    }

    private void Report(UhuraException error)
    {
        try
        {
            _report(error);
        }
        catch (Exception ex)
        {
            _logger.LogError(ex, "Reporting an error of {Stream} failed", StreamName);
        }
    }

    private readonly record struct Entry(UhuraEvent Event, AckCountdown Countdown);

    /// <summary>One subscriber: its queue, its pump, its end (completed, failed or disposed).</summary>
    private sealed class Subscriber : IDisposable
    {
        private readonly MergedEvents _owner;
        private readonly IObserver<UhuraEvent> _observer;
        private readonly string? _eventName;
        private readonly Channel<Entry> _queue;
        private Exception? _failure;
        private volatile bool _disposed;

        public Subscriber(MergedEvents owner, IObserver<UhuraEvent> observer, string? eventName)
        {
            _owner = owner;
            _observer = observer;
            _eventName = eventName;
            _queue = Channel.CreateBounded<Entry>(new BoundedChannelOptions(owner._capacity) { SingleReader = true, SingleWriter = false, FullMode = BoundedChannelFullMode.Wait });
        }

        /// <summary>Whether <paramref name="e"/> is for this subscriber (all are, unless it subscribed to one name).</summary>
        public bool Wants(UhuraEvent e) => _eventName is null || string.Equals(e.Name, _eventName, StringComparison.Ordinal);

        /// <summary>Takes no more events (disposed, failed or completed).</summary>
        public bool IsClosed { get; private set; }

        public void Start() => _ = Task.Run(PumpAsync);

        public bool TryWrite(UhuraEvent e, AckCountdown countdown) => _queue.Writer.TryWrite(new Entry(e, countdown));

        public async ValueTask<bool> WriteAsync(UhuraEvent e, AckCountdown countdown)
        {
            try
            {
                await _queue.Writer.WriteAsync(new Entry(e, countdown)).ConfigureAwait(false);
                return true;
            }
            catch (ChannelClosedException)
            {
                return false;
            }
        }

        public void Complete()
        {
            IsClosed = true;
            _queue.Writer.TryComplete();
        }

        public void Fail(Exception error)
        {
            _failure = error;
            Complete();
        }

        public void Dispose()
        {
            _disposed = true; // what is queued is acknowledged without being delivered
            _owner.Remove(this);
            Complete();
        }

        private async Task PumpAsync()
        {
            var reader = _queue.Reader;
            while (await reader.WaitToReadAsync().ConfigureAwait(false))
            {
                while (reader.TryRead(out var entry))
                {
                    if (!_disposed)
                    {
                        try
                        {
                            _observer.OnNext(entry.Event);
                        }
                        catch (Exception ex)
                        {
                            _owner.Report(new SubscriberException(StreamName, entry.Event.Name, ex) { ConnectionId = entry.Event.Connection?.Id });
                        }
                    }

                    entry.Countdown.Signal();
                }
            }

            if (_disposed)
            {
                return;
            }

            try
            {
                if (_failure is { } failure)
                {
                    _observer.OnError(failure);
                }
                else
                {
                    _observer.OnCompleted();
                }
            }
            catch (Exception ex)
            {
                _owner.Report(new SubscriberException(StreamName, null, ex));
            }
        }
    }
}
