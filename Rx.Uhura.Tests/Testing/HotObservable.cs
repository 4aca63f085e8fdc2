using System.Reactive;
using System.Reactive.Disposables;

namespace Microsoft.Reactive.Testing;

/// <summary>
/// A testable observable whose notifications are scheduled at absolute virtual times when it is created,
/// and delivered to whichever observers are subscribed at that time.
/// </summary>
internal sealed class HotObservable<T> : ITestableObservable<T>
{
    private readonly TestScheduler _scheduler;
    private readonly List<IObserver<T>> _observers = new();
    private readonly List<Subscription> _subscriptions = new();
    private readonly Recorded<Notification<T>>[] _messages;

    public HotObservable(TestScheduler scheduler, params Recorded<Notification<T>>[] messages)
    {
        _scheduler = scheduler ?? throw new ArgumentNullException(nameof(scheduler));
        _messages = messages ?? throw new ArgumentNullException(nameof(messages));

        foreach (var message in messages)
        {
            var notification = message.Value;
            scheduler.ScheduleAbsolute(default(object), message.Time, (_, _) =>
            {
                foreach (var observer in _observers.ToArray())
                {
                    notification.Accept(observer);
                }

                return Disposable.Empty;
            });
        }
    }

    public IList<Subscription> Subscriptions => _subscriptions;

    public IList<Recorded<Notification<T>>> Messages => _messages;

    public IDisposable Subscribe(IObserver<T> observer)
    {
        ArgumentNullException.ThrowIfNull(observer);

        _observers.Add(observer);
        _subscriptions.Add(new Subscription(_scheduler.Clock));
        var index = _subscriptions.Count - 1;

        return Disposable.Create(() =>
        {
            _observers.Remove(observer);
            _subscriptions[index] = new Subscription(_subscriptions[index].Subscribe, _scheduler.Clock);
        });
    }
}
