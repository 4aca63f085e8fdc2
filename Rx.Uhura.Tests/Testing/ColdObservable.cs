using System.Reactive;
using System.Reactive.Disposables;

namespace Microsoft.Reactive.Testing;

/// <summary>
/// A testable observable that, on each subscription, schedules its notifications relative to the
/// virtual time of that subscription.
/// </summary>
internal sealed class ColdObservable<T> : ITestableObservable<T>
{
    private readonly TestScheduler _scheduler;
    private readonly List<Subscription> _subscriptions = new();
    private readonly Recorded<Notification<T>>[] _messages;

    public ColdObservable(TestScheduler scheduler, params Recorded<Notification<T>>[] messages)
    {
        _scheduler = scheduler ?? throw new ArgumentNullException(nameof(scheduler));
        _messages = messages ?? throw new ArgumentNullException(nameof(messages));
    }

    public IList<Subscription> Subscriptions => _subscriptions;

    public IList<Recorded<Notification<T>>> Messages => _messages;

    public IDisposable Subscribe(IObserver<T> observer)
    {
        ArgumentNullException.ThrowIfNull(observer);

        _subscriptions.Add(new Subscription(_scheduler.Clock));
        var index = _subscriptions.Count - 1;

        var scheduled = new CompositeDisposable();
        foreach (var message in _messages)
        {
            var notification = message.Value;
            scheduled.Add(_scheduler.ScheduleRelative(default(object), message.Time, (_, _) =>
            {
                notification.Accept(observer);
                return Disposable.Empty;
            }));
        }

        return Disposable.Create(() =>
        {
            _subscriptions[index] = new Subscription(_subscriptions[index].Subscribe, _scheduler.Clock);
            scheduled.Dispose();
        });
    }
}
