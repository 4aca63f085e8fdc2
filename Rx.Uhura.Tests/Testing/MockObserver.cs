using System.Reactive;

namespace Microsoft.Reactive.Testing;

/// <summary>
/// An observer that records each notification with the scheduler's virtual clock at the time of receipt.
/// </summary>
internal sealed class MockObserver<T> : ITestableObserver<T>
{
    private readonly TestScheduler _scheduler;
    private readonly List<Recorded<Notification<T>>> _messages = new();

    public MockObserver(TestScheduler scheduler)
    {
        _scheduler = scheduler ?? throw new ArgumentNullException(nameof(scheduler));
    }

    public IList<Recorded<Notification<T>>> Messages => _messages;

    public void OnNext(T value) =>
        _messages.Add(new Recorded<Notification<T>>(_scheduler.Clock, Notification.CreateOnNext(value)));

    public void OnError(Exception error) =>
        _messages.Add(new Recorded<Notification<T>>(_scheduler.Clock, Notification.CreateOnError<T>(error)));

    public void OnCompleted() =>
        _messages.Add(new Recorded<Notification<T>>(_scheduler.Clock, Notification.CreateOnCompleted<T>()));
}
